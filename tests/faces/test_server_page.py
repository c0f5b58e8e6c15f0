"""The web page end to end in headless Chromium: ask, see the highlighted answer and its
sources, switch the retriever. Keeps a screenshot in build/test-artifacts/page.png.

Nothing leaves the machine: the system chromedriver is given to selenium's Service, so Selenium
Manager is never asked (the test fails if it is), and SE_AVOID_STATS keeps its statistics off."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

import odqa
from helpers import ROOT, save_hand_set_reader
from odqa.read.extractive import ExtractiveReader
from odqa.server import create_app

ARTIFACT = ROOT / "build" / "test-artifacts" / "page.png"

pytestmark = pytest.mark.browser


@pytest.fixture()
def server(tmp_path: Path, small_corpus: Path, tiny_model: Path) -> Iterator[str]:
    """uvicorn on a free loopback port, serving a BM25 + dense index and an extractive
    reader that answers "vitamin C"."""
    index = odqa.build_index(
        small_corpus, tmp_path / "idx", retrievers=["bm25", "dense"], model=str(tiny_model)
    )
    reader = ExtractiveReader(save_hand_set_reader(tmp_path / "reader"), device="cpu")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(index, reader=reader), port=port, log_level="warning")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not served.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    thread.join(30)


def test_the_page_answers_highlights_and_switches_retriever(
    server: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(server)
    wait = WebDriverWait(browser, 30)
    wait.until(ready.element_to_be_clickable((By.ID, "submit")))  # /info has been read
    retrievers = Select(browser.find_element(By.ID, "retriever"))
    assert [option.text for option in retrievers.options] == ["bm25", "dense", "hybrid"]
    assert retrievers.first_selected_option.text == "hybrid"

    browser.find_element(By.ID, "question").send_keys("Which vitamin prevents scurvy?")
    browser.find_element(By.ID, "submit").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "answer-text"), "vitamin C"))
    mark = browser.find_element(By.CSS_SELECTOR, "#evidence mark")
    assert mark.text == "vitamin C"
    sources = browser.find_elements(By.CSS_SELECTOR, "#sources .source .doc-id")
    assert "d1" in [source.text for source in sources]
    assert "retriever hybrid" in browser.find_element(By.ID, "sources-heading").text

    retrievers.select_by_visible_text("bm25")  # re-asks with BM25
    wait.until(ready.text_to_be_present_in_element((By.ID, "sources-heading"), "retriever bm25"))
    cited = browser.find_element(By.CSS_SELECTOR, "#sources .source.cited .doc-id")
    assert cited.text == "d1"
    assert browser.find_element(By.CSS_SELECTOR, "#evidence mark").text == "vitamin C"
    assert browser.find_element(By.ID, "status").text == ""
    bars = browser.find_elements(By.CSS_SELECTOR, "#sources .source meter.score-bar")
    values = [float(bar.get_attribute("value")) for bar in bars]
    assert len(values) == len(browser.find_elements(By.CSS_SELECTOR, "#sources .source"))
    assert values == sorted(values, reverse=True) and values[0] > values[-1] > 0  # by score
    assert values[0] == float(bars[0].get_attribute("max"))  # the best fills its bar

    screenshot = tmp_path / "page.png"
    assert browser.save_screenshot(str(screenshot))
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, ARTIFACT)


def test_the_page_sends_its_filter_and_shows_why_one_is_refused(
    server: str, browser: webdriver.Chrome
) -> None:
    browser.get(server)
    wait = WebDriverWait(browser, 30)
    wait.until(ready.element_to_be_clickable((By.ID, "submit")))
    browser.find_element(By.ID, "question").send_keys("Which vitamin prevents scurvy?")
    where = browser.find_element(By.ID, "where")
    where.send_keys("year=2020")
    browser.find_element(By.ID, "submit").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "status"), "the filter is not JSON"))
    where.clear()
    where.send_keys('{"year": 2020}')  # sent: the server names the field no document has
    browser.find_element(By.ID, "submit").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "status"), "field 'where.year'"))
    assert "no document of the index has this field" in browser.find_element(By.ID, "status").text
