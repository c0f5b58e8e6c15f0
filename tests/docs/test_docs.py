"""The documentation does what it says: the site builds with no warning (links and anchors
checked), and every ``bash`` and ``python`` block of every page (and of the README) runs, in
order, in a fresh folder per page. A block right after a ``<!-- not run: REASON -->`` line is
not run; the ``odqa`` commands of every block, run or not, must name real commands and options.
The indexes a page names in a ``<!-- docs: setup NAME -->`` comment are built once, by the
command the docs show for each."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main

from odqa.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [
    ROOT / "README.md",
    *sorted(path for path in DOCS.rglob("*.md") if "hooks" not in path.parts),
]
FENCE = re.compile(
    r"(?:^<!-- not run: (?P<reason>[^\n]*?) -->\n)?"  # why the block is not run, if it is not
    r"^```(?P<language>\w*)[^\n]*\n(?P<code>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
SETUP = re.compile(r"<!-- docs: setup ([\w\-, ]+) -->")
BLOCK_SECONDS = 900
NEVER_RUN = re.compile(r"\b(pip install|ray start|apt-get|sudo|make (demo|test|docs|setup))\b")
"""What a docs test must not do to the machine it runs on: such a block must be marked not run."""

SETUPS = {
    "my-index": "odqa index examples/scifact-sample/corpus.jsonl my-index --retrievers bm25,dense",
    "colbert-index": "odqa index examples/scifact-sample/corpus.jsonl colbert-index "
    "--retrievers bm25,colbert --nbits 2",
    "qa-index": "odqa index examples/squad-sample/questions.json qa-index --retrievers bm25,dense",
    "my-reader": "odqa train reader examples/squad-sample/train.json --out my-reader "
    "--max-questions 200",
}
"""What a page's ``docs: setup`` comment may name, and the command (shown in the docs) that
makes it."""


@dataclass(frozen=True)
class Block:
    page: Path
    number: int
    language: str
    code: str
    not_run: str | None = None
    """Why the block is not run (its ``<!-- not run: REASON -->`` line), or None."""

    @property
    def runs(self) -> bool:
        return self.language in ("bash", "python") and self.not_run is None

    def __str__(self) -> str:
        first = self.code.strip().splitlines()[0] if self.code.strip() else ""
        return f"{self.page.relative_to(ROOT)} block {self.number} ({first[:60]})"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, number, match["language"], match["code"], match["reason"])
        for number, match in enumerate(FENCE.finditer(text), start=1)
    ]


def setups(page: Path) -> list[str]:
    found = SETUP.search(page.read_text(encoding="utf-8"))
    return [name.strip() for name in found.group(1).split(",")] if found else []


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a shell block as words (continuations joined, comments and heredoc
    bodies dropped)."""
    text = code.replace("\\\n", " ")
    commands, heredoc = [], None
    for line in text.splitlines():
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        marker = re.search(r"<<-?'?(\w+)'?", line)
        if marker:
            heredoc = marker.group(1)
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        part: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "||", "|", ";", "&"):
                if part:
                    commands.append(part)
                part = []
            else:
                part.append(word)
    return commands


def odqa_calls(code: str) -> list[list[str]]:
    """The ``odqa`` command lines of a shell block, each from the word after ``odqa``."""
    calls = []
    for words in shell_commands(code):
        while words and re.fullmatch(r"\w+=.*", words[0]):  # VAR=value odqa …
            words = words[1:]
        if words and words[0] == "odqa":
            calls.append(words[1:])
    return calls


def unknown_words(words: list[str]) -> list[str]:
    """What in ``odqa WORDS`` is not a command or an option of it."""
    command = typer.main.get_command(app)
    rest = list(words)
    while rest and hasattr(command, "commands") and not rest[0].startswith("-"):
        name = rest.pop(0)
        if name not in command.commands:
            return [name]
        command = command.commands[name]
    if hasattr(command, "commands"):
        return [] if rest in ([], ["--help"]) else rest[:1]
    known = {"--help"} | {
        option for param in command.params for option in (*param.opts, *param.secondary_opts)
    }
    return [
        word.split("=")[0]
        for word in rest
        if word.startswith("-") and len(word) > 1 and word.split("=")[0] not in known
    ]


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.language == "bash"], ids=str)
def test_every_odqa_command_shown_is_a_real_command_with_real_options(block: Block) -> None:
    for words in odqa_calls(block.code):
        assert not unknown_words(words), f"{block}: odqa {' '.join(words)}"


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.language == "json"], ids=str)
def test_every_json_example_is_json(block: Block) -> None:
    json.loads(block.code)


def test_every_setup_is_made_by_a_command_the_docs_show() -> None:
    shown = "\n".join(
        " ".join(words) for block in ALL_BLOCKS for words in shell_commands(block.code)
    )
    for name, command in SETUPS.items():
        assert " ".join(shlex.split(command)) in shown, name
    for page in PAGES:
        assert set(setups(page)) <= set(SETUPS), page


def test_no_block_that_would_change_the_machine_is_run() -> None:
    runs = [block for block in ALL_BLOCKS if block.runs and NEVER_RUN.search(block.code)]
    assert not runs, [str(block) for block in runs]


def test_skipped_blocks_say_why() -> None:
    skipped = [block for block in ALL_BLOCKS if block.not_run is not None]
    assert skipped and all(len(block.not_run) > 10 for block in skipped)
    markers = [
        line
        for page in PAGES
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith("<!-- not run:")
    ]
    assert len(markers) == len(skipped)  # every marker is right above a block


@pytest.mark.slow
def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    site = build_site(tmp_path)
    assert (site / "index.html").is_file()
    api = (site / "reference" / "api.html").read_text(encoding="utf-8")
    assert "build_index" in api and "Searcher" in api
    cli = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    assert all(f"odqa {name}" in cli for name in ("index", "search", "add", "train reader"))


def environment() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "100"}


def run(block: Block, folder: Path) -> subprocess.CompletedProcess:
    program = (
        ["bash", "-euo", "pipefail", "-c"] if block.language == "bash" else [sys.executable, "-c"]
    )
    child = subprocess.Popen(
        [*program, block.code],
        cwd=folder,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its servers and children end with it
    )
    try:
        out, err = child.communicate(timeout=BLOCK_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def sandbox(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "examples").symlink_to(ROOT / "examples")
    return folder


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory):
    """Each setup, made once by its command, in a folder of its own."""
    made: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("docs-setups")

    def get(name: str) -> Path:
        if name not in made:
            folder = sandbox(root / name)
            block = Block(Path("setup"), 0, "bash", SETUPS[name])
            done = run(block, folder)
            assert done.returncode == 0, f"setup {name}: {done.stderr[-3000:]}"
            made[name] = folder / name
        return made[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", [page for page in PAGES if any(block.runs for block in blocks(page))], ids=page_id
)
def test_every_block_of_the_page_runs(page: Path, prepared, tmp_path: Path) -> None:
    folder = sandbox(tmp_path / "page")
    for name in setups(page):
        shutil.copytree(prepared(name), folder / name)
    for block in blocks(page):
        if not block.runs:
            continue
        assert not NEVER_RUN.search(block.code), f"{block} would change the machine"
        done = run(block, folder)
        assert done.returncode == 0, (
            f"{block} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )


def test_the_readme_links_to_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert links
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert not missing
    assert len(readme.splitlines()) <= 200


def build_site(folder: Path) -> Path:
    """``mkdocs build --strict`` into ``folder``; the site's folder."""
    mkdocs = Path(sys.executable).with_name("mkdocs")
    site = folder / "site"
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return site


@pytest.mark.browser
def test_the_site_opens_from_the_disk_in_a_browser(browser, tmp_path: Path) -> None:
    """The built site read as a user reads it (file://, no server): the home page with its
    navigation, and the API reference; screenshots kept in build/test-artifacts/."""
    from selenium.webdriver.common.by import By

    site = build_site(tmp_path)
    artifacts = ROOT / "build" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1400, 1000)  # wide enough for the navigation beside the page
    browser.get((site / "index.html").as_uri())
    assert browser.title.startswith("odqa")
    navigation = browser.find_element(By.CSS_SELECTOR, "nav.md-nav--primary").text
    assert "Getting started" in navigation and "Python API" in navigation
    browser.save_screenshot(str(artifacts / "docs-home.png"))
    browser.get((site / "reference" / "api.html").as_uri())
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "h3")]
    assert any("build_index" in heading for heading in headings), headings[:10]
    assert browser.find_elements(By.CSS_SELECTOR, ".highlight .gp")  # doctest prompts as code
    browser.save_screenshot(str(artifacts / "docs-api.png"))
