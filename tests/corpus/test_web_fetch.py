"""``odqa fetch`` and :mod:`odqa.corpus.web` against a local server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from odqa.cli import app
from odqa.corpus import Document, read_documents
from odqa.corpus.web import FetchOptions, FetchSummary, UrlResult, fetch_corpus
from odqa.corpus.web.extract import extract
from odqa.corpus.web.fetcher import Backoff, retry_after_seconds
from odqa.corpus.web.output import done_ids
from odqa.corpus.web.urls import normalize_url, read_url_list
from odqa.errors import InputError
from web_server import WebServer, serve

FAST = FetchOptions(timeout=0.6, retries=2, backoff_base=0.01, seed=0, per_host=4)
MIXED_PATHS = [
    "/article",
    "/slow",
    "/flaky",
    "/limited",
    "/missing",
    "/broken",
    "/empty",
    "/plain.txt",
    "/pubmed/31452104/",
    "/report.pdf",
]
OK_PATHS = ["/article", "/plain.txt", "/pubmed/31452104/"]


@dataclass
class Run:
    server: WebServer
    urls_file: Path
    out: Path
    summary: FetchSummary
    report: dict[int, dict]
    documents: dict[str, Document]


def write_urls(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_report(out: Path) -> dict[int, dict]:
    lines = Path(f"{out}.report.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["line"]: record for record in map(json.loads, lines)}


def run_fetch(
    server: WebServer, urls_file: Path, out: Path, options: FetchOptions = FAST, **kwargs
) -> Run:
    summary = fetch_corpus(urls_file, out, options, **kwargs)
    documents = {document.id: document for document in read_documents(out)}
    return Run(server, urls_file, out, summary, read_report(out), documents)


@pytest.fixture()
def server() -> Iterator[WebServer]:
    with serve() as started:
        yield started


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One run over every kind of page, misbehaving server and bad line (lines 1-15)."""
    folder = tmp_path_factory.mktemp("mixed")
    with serve() as started:
        lines = [started.url(path) for path in MIXED_PATHS]  # lines 1-10
        lines += ["# a comment", "", "ftp://example.org/file", "not a url"]  # 11-14
        lines += [started.url("/article") + "#section"]  # 15: the same page as line 1
        urls_file = write_urls(folder / "urls.txt", lines)
        yield run_fetch(started, urls_file, folder / "corpus.jsonl")


def result_for(run: Run, path: str) -> dict:
    return run.report[MIXED_PATHS.index(path) + 1]


def test_html_page_keeps_main_text_and_drops_boilerplate(mixed: Run) -> None:
    url = mixed.server.url("/article")
    document = mixed.documents[url]
    assert document.title == "Vitamin C and scurvy"
    assert document.text.splitlines() == [
        "Vitamin C and scurvy",
        "Scurvy is caused by a lack of vitamin C in the diet.",
        "Symptoms",
        "Bleeding gums",
        "Poor wound healing",
        "Citrus fruit prevents it.",
    ]
    assert set(document.metadata) == {"url", "fetched_at", "content_type", "status"}
    assert document.metadata["url"] == url
    assert document.metadata["content_type"] == "text/html"
    assert document.metadata["status"] == 200
    datetime.fromisoformat(document.metadata["fetched_at"])
    assert result_for(mixed, "/article") == {
        "url": url,
        "line": 1,
        "status": "ok",
        "reason": "",
        "attempts": 1,
    }


def test_slow_page_fails_after_retries_without_holding_back_the_rest(mixed: Run) -> None:
    result = result_for(mixed, "/slow")
    assert result["status"] == "failed"
    assert result["attempts"] == 3 == mixed.server.hits["/slow"]
    assert "timed out after 0.6s" in result["reason"]
    assert mixed.server.url("/article") in mixed.documents


def test_503_is_retried_then_succeeds(mixed: Run) -> None:
    result = result_for(mixed, "/flaky")
    assert (result["status"], result["attempts"]) == ("ok", 2)
    assert mixed.documents[mixed.server.url("/flaky")].text == "Back up again."


def test_429_waits_as_long_as_retry_after_says(mixed: Run) -> None:
    result = result_for(mixed, "/limited")
    assert (result["status"], result["attempts"]) == ("ok", 2)
    first, second = mixed.server.seen["/limited"]
    assert second - first >= 0.95  # Retry-After: 1, although the backoff base is 0.01 s


def test_404_fails_at_once(mixed: Run) -> None:
    result = result_for(mixed, "/missing")
    assert result["status"] == "failed"
    assert result["reason"] == "HTTP 404 Not Found"
    assert result["attempts"] == 1 == mixed.server.hits["/missing"]


def test_malformed_html_still_yields_text(mixed: Run) -> None:
    document = mixed.documents[mixed.server.url("/broken")]
    assert "Unclosed paragraph bold nested text & more" in document.text
    assert "Second block" in document.text


def test_page_without_text_and_unsupported_types_are_failures(mixed: Run) -> None:
    assert result_for(mixed, "/empty")["status"] == "failed"
    assert result_for(mixed, "/empty")["reason"] == "no text"
    pdf = result_for(mixed, "/report.pdf")
    assert (pdf["status"], pdf["reason"]) == ("failed", "unsupported content type: application/pdf")


def test_plain_text_passes_through(mixed: Run) -> None:
    document = mixed.documents[mixed.server.url("/plain.txt")]
    assert (document.title, document.text) == ("", "Line one of a plain text file.\nLine two.")
    assert document.metadata["content_type"] == "text/plain"


def test_pubmed_page_gives_title_and_abstract_only(mixed: Run) -> None:
    document = mixed.documents[mixed.server.url("/pubmed/31452104/")]
    assert document.title == "Dietary vitamin C and scurvy in adults"
    assert document.text == (
        "Background: Scurvy persists in adults with poor diets.\n"
        "Results: Supplementation with vitamin C resolved symptoms within weeks."
    )


def test_bad_lines_are_reported_with_their_line_numbers(mixed: Run) -> None:
    urls_file = mixed.urls_file
    assert mixed.report[13]["status"] == "skipped"
    assert mixed.report[13]["reason"] == f"{urls_file}:13: not an http(s) URL"
    assert mixed.report[14]["reason"] == f"{urls_file}:14: contains whitespace"
    assert mixed.report[15]["reason"] == "duplicate of line 1"
    assert 11 not in mixed.report and 12 not in mixed.report
    assert mixed.server.hits["/article"] == 1


def test_summary_counts_every_line(mixed: Run) -> None:
    summary = mixed.summary
    assert (summary.ok, summary.cached, summary.failed) == (6, 0, 4)
    assert (summary.skipped, summary.invalid) == (1, 2)
    assert summary.report == Path(f"{mixed.out}.report.jsonl")
    assert len(mixed.documents) == 6


def test_second_run_fetches_nothing_and_duplicates_nothing(
    server: WebServer, tmp_path: Path
) -> None:
    urls_file = write_urls(tmp_path / "urls.txt", [server.url(path) for path in OK_PATHS])
    out = tmp_path / "corpus.jsonl"
    first = run_fetch(server, urls_file, out)
    hits = dict(server.hits)
    again = run_fetch(server, urls_file, out)
    assert dict(server.hits) == hits
    assert again.documents == first.documents
    assert {r["status"] for r in again.report.values()} == {"skipped"}
    assert again.summary.skipped == 3
    out.unlink()  # the cache alone is enough to rebuild the corpus
    rebuilt = run_fetch(server, urls_file, out)
    assert dict(server.hits) == hits
    assert {r["status"] for r in rebuilt.report.values()} == {"cached"}
    assert rebuilt.documents == first.documents


def test_interrupted_run_resumes_without_loss_or_duplicates(
    server: WebServer, tmp_path: Path
) -> None:
    paths = [f"/busy/{number}" for number in range(6)]
    urls_file = write_urls(tmp_path / "urls.txt", [server.url(path) for path in paths])
    out = tmp_path / "corpus.jsonl"

    class Stop(Exception):
        pass

    def stop_after_two(result: UrlResult) -> None:
        if result.status == "ok" and len(out.read_text().splitlines()) == 2:
            raise Stop

    with pytest.raises(Stop):
        fetch_corpus(urls_file, out, FAST, on_result=stop_after_two)
    written = {document.id for document in read_documents(out)}
    assert len(written) == 2
    with open(out, "a", encoding="utf-8") as handle:
        handle.write('{"id": "http://cut-short')  # a last line the interruption cut in two
    hits = dict(server.hits)
    resumed = run_fetch(server, urls_file, out)
    assert sorted(resumed.documents) == sorted(server.url(path) for path in paths)
    skipped = {r["url"] for r in resumed.report.values() if r["status"] == "skipped"}
    assert skipped == written
    assert all(server.hits[path] == hits[path] for path in paths if server.url(path) in written)


def test_connection_errors_are_retried(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    urls_file = write_urls(tmp_path / "urls.txt", [f"http://127.0.0.1:{port}/"])
    summary = fetch_corpus(urls_file, tmp_path / "corpus.jsonl", FAST)
    (result,) = read_report(tmp_path / "corpus.jsonl").values()
    assert summary.failed == 1
    assert result["attempts"] == 3
    assert result["reason"].startswith("connection error") and "(3 attempts)" in result["reason"]


def test_output_tail_is_repaired_and_foreign_files_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "corpus.jsonl"
    out.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}')  # whole, no newline
    assert done_ids(out) == {"a", "b"}
    assert out.read_text().endswith('"y"}\n')
    out.write_text('{"id": "a", "text": "x"}\n{"id": "b", "te')  # cut short
    assert done_ids(out) == {"a"}
    assert out.read_text() == '{"id": "a", "text": "x"}\n'
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\nworld")
    with pytest.raises(InputError, match=r"notes\.txt:1"):
        done_ids(notes)
    assert notes.read_text() == "hello\nworld"


@pytest.mark.parametrize(("concurrency", "per_host", "expected"), [(16, 2, 2), (3, 8, 3)])
def test_concurrency_limits_are_respected(
    server: WebServer, tmp_path: Path, concurrency: int, per_host: int, expected: int
) -> None:
    paths = [f"/busy/{number}" for number in range(8)]
    urls_file = write_urls(tmp_path / "urls.txt", [server.url(path) for path in paths])
    options = FetchOptions(concurrency=concurrency, per_host=per_host, timeout=5)
    run = run_fetch(server, urls_file, tmp_path / "corpus.jsonl", options)
    assert run.summary.ok == 8
    assert server.max_active == expected


def test_url_list_parsing(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(
        b"\xef\xbb\xbfHTTPS://Example.ORG/a?b=1#top\n"
        b"  # comment\n"
        b"\n"
        b"https://example.org/a?b=1\n"
        b"mailto:someone@example.org\n"
        b"http://\n"
        b"http://example.org:99999/\n"
        b"http://example.org/\xff\n"
    )
    parsed = read_url_list(path)
    assert [(u.line, u.url) for u in parsed.urls] == [(1, "https://example.org/a?b=1")]
    assert [(d.line, d.reason) for d in parsed.duplicates] == [(4, "duplicate of line 1")]
    assert [(bad.line, bad.reason.split(": ", 1)[1]) for bad in parsed.invalid] == [
        (5, "not an http(s) URL"),
        (6, "no host"),
        (7, "bad port"),
        (8, "not valid UTF-8 (byte 0xff at column 20)"),
    ]
    assert normalize_url("http://User@Host.COM/Path") == "http://User@host.com/Path"


def test_backoff_is_exponential_capped_seeded_and_yields_to_retry_after() -> None:
    options = FetchOptions(backoff_base=1.0, backoff_max=4.0, retry_after_max=10.0, seed=7)
    first, second = Backoff(options), Backoff(options)
    assert [first.delay(n) for n in range(1, 6)] == [second.delay(n) for n in range(1, 6)]
    for attempt, ceiling in enumerate([1.0, 2.0, 4.0, 4.0, 4.0], start=1):
        assert 0 <= Backoff(options).delay(attempt) <= ceiling
    assert first.delay(1, retry_after=3.0) == 3.0
    assert first.delay(1, retry_after=3600.0) == 10.0


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 60.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_pubmed_is_recognised_by_its_address() -> None:
    body = b"<html><h1 class='heading-title'>T</h1><div class='abstract-content'><p>A.</p></div>"
    article = extract(body, "text/html", "https://pubmed.ncbi.nlm.nih.gov/123/")
    assert (article.title, article.text) == ("T", "A.")
    other = extract(body, "text/html", "https://example.org/123/")
    assert other.text == "T\nA."


def test_charset_from_meta_and_link_dense_blocks() -> None:
    body = (
        '<meta charset="iso-8859-1"><p>Café au lait.</p>'
        '<div><a href="/1">one</a> <a href="/2">two</a> <a href="/3">three</a></div>'
    ).encode("latin-1")
    assert extract(body, "text/html", "http://x/").text == "Café au lait."


def test_bad_options_and_outputs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="per_host"):
        FetchOptions(per_host=0)
    with pytest.raises(InputError, match="no such file"):
        fetch_corpus(tmp_path / "absent.txt", tmp_path / "out.jsonl")
    urls_file = write_urls(tmp_path / "urls.txt", [])
    with pytest.raises(InputError, match="gzipped"):
        fetch_corpus(urls_file, tmp_path / "out.jsonl.gz")


runner = CliRunner()


def test_cli_end_to_end(server: WebServer, tmp_path: Path) -> None:
    lines = [server.url(path) for path in OK_PATHS] + [server.url("/missing"), "garbage"]
    urls_file = write_urls(tmp_path / "urls.txt", lines)
    out = tmp_path / "corpus" / "web.jsonl"
    cache = tmp_path / "cache"
    args = ["fetch", str(urls_file), "--out", str(out), "--cache", str(cache), "--per-host", "3"]
    result = runner.invoke(app, [*args, "--timeout", "5", "--retries", "1"])
    assert result.exit_code == 0, result.output
    assert "3 ok, 0 cached, 1 failed" in result.output
    assert "1 invalid line" in result.output
    assert {document.id for document in read_documents(out)} == {
        server.url(path) for path in OK_PATHS
    }
    assert any(cache.rglob("*.body"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["absent.txt", "--out", "o.jsonl"], "absent.txt: no such file"),
        (["urls.txt", "--out", "o.jsonl", "--concurrency", "0"], "concurrency"),
        (["urls.txt", "--out", "o.jsonl", "--timeout", "0"], "timeout"),
    ],
)
def test_cli_bad_arguments_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    result = runner.invoke(app, ["fetch", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_help_has_an_example() -> None:
    result = runner.invoke(app, ["fetch", "--help"])
    assert result.exit_code == 0 and "Example" in result.output
