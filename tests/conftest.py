"""Shared fixtures: a tiny random BERT with the MiniLM tokenizer, sample corpora, data paths."""

from __future__ import annotations

import json
import os
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from helpers import ROOT, SAMPLE, SHARED_DATA, TOKENIZER_FILES, copy_tokenizer, shared_data

# re-exported for any test still importing them from here; new code imports from helpers
__all__ = ["ROOT", "SAMPLE", "SHARED_DATA", "TOKENIZER_FILES", "shared_data"]


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _reads_shared_data(function: object) -> bool:
    code = getattr(getattr(function, "__wrapped__", function), "__code__", None)
    return code is not None and any(
        "shared_data" in each.co_names or "SHARED_DATA" in each.co_names
        for each in _code_objects(code)
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``shared_data`` every test that reads the shared data folder: the test function or
    one of its fixtures names ``shared_data`` (helpers.shared_data) or ``SHARED_DATA``."""
    for item in items:
        if item.get_closest_marker("shared_data") is not None:
            continue
        fixtures = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        functions = [getattr(item, "function", None)]
        functions += [defs[-1].func for defs in fixtures.values() if defs]
        if any(_reads_shared_data(function) for function in functions):
            item.add_marker(pytest.mark.shared_data)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide BERT with random weights and the real MiniLM tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder)
    copy_tokenizer(folder)
    return folder


@pytest.fixture()
def small_corpus(tmp_path: Path) -> Path:
    """Six short documents in JSONL, one of them long enough to be chunked."""
    docs = [
        {"id": "d1", "title": "Scurvy", "text": "Scurvy is caused by a lack of vitamin C."},
        {"id": "d2", "title": "Rickets", "text": "Rickets comes from too little vitamin D."},
        {"id": "d3", "title": "Beriberi", "text": "Beriberi follows a deficiency of thiamine."},
        {"id": "d4", "title": "Proteins", "text": "Kinases phosphorylate proteins in cells."},
        {"id": "d5", "title": "", "text": " ".join(["The ocean is deep and blue."] * 60)},
        {"id": "d6", "title": "Mitosis", "text": "Cyclins control the cell division cycle."},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs), encoding="utf-8")
    return path


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture()
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Headless Chromium through Debian's chromium and chromedriver (``make test`` installs
    them; skipped without them, failed on CI, which must run the browser tests). Nothing
    leaves the machine: the system chromedriver is given to selenium's Service, so Selenium
    Manager is never asked (the test fails if it is), and SE_AVOID_STATS keeps its
    statistics off."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        missing = (
            "needs Debian's chromium and chromium-driver (/usr/bin/chromium, "
            "/usr/bin/chromedriver); make test installs them"
        )
        if os.environ.get("CI"):
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    monkeypatch.setenv("SE_AVOID_STATS", "true")

    def no_selenium_manager(*args: object, **kwargs: object) -> dict:
        raise AssertionError("Selenium Manager was asked for a driver; use the system one")

    monkeypatch.setattr(SeleniumManager, "binary_paths", no_selenium_manager)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()
