"""The service against a hostile client: strings that are not Unicode, clients that never
finish their request headers, the security headers of every response (and the page working
under its Content-Security-Policy), and an /info that shows no path of the server's."""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import odqa
from odqa.cli import app as cli_app
from odqa.server import create_app
from odqa.server.connections import header_timeout_protocol
from odqa.server.security import PAGE_POLICY

JSON = {"Content-Type": "application/json"}
STATIC = Path(odqa.__file__).parent / "server" / "static"


@pytest.fixture()
def index(tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ODQA_API_KEY", raising=False)
    return odqa.build_index(small_corpus, tmp_path / "idx", retrievers=["bm25"], language="en")


@pytest.fixture()
def client(index: Path) -> Iterator[TestClient]:
    app = create_app(index, allow_writes=True)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- strings that are not Unicode -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field", "where"),
    [
        ("/search", '{"query": "vitamin \\ud800"}', "query", 8),
        ("/search", '{"query": "scurvy", "retriever": "bm\\udfff25"}', "retriever", 2),
        ("/ask", '{"question": "vitamin \\ud800"}', "question", 8),
        ("/ask", '{"question": "why?", "retriever": "\\ud800"}', "retriever", 0),
        (
            "/documents",
            '{"documents": [{"id": "n1", "text": "a \\ud800 b"}]}',
            "documents.0.text",
            2,
        ),
        ("/documents", '{"documents": [{"id": "n\\udc00", "text": "x"}]}', "documents.0.id", 1),
        (
            "/documents",
            '{"documents": [{"id": "n1", "text": "x"}, {"id": "n2", "text": "y", '
            '"title": "\\ud800"}]}',
            "documents.1.title",
            0,
        ),
    ],
)
def test_a_lone_surrogate_is_a_422_naming_the_field(
    client: TestClient, index: Path, path: str, body: str, field: str, where: int
) -> None:
    response = client.post(path, content=body.encode("ascii"), headers=JSON)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"field '{field}': not valid Unicode: a lone surrogate \\u")
    assert detail.endswith(f"at character {where}")
    (error,) = response.json()["errors"]
    assert error["type"] == "string_unicode" and ".".join(map(str, error["loc"])) == f"body.{field}"
    assert odqa.Manifest.read(index).counts["documents"] == 6  # nothing was added


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/search", '{"query": "vitamin", "where": {"source": "a\\ud800"}}', "where.source"),
        ("/search", '{"query": "vitamin", "where": {"s\\udc00": "a"}}', "where"),
        ("/search", '{"query": "vitamin", "where": {"source": ["x", "\\ud800"]}}', "where.source"),
        ("/ask", '{"question": "why?", "where": {"source": "a\\ud800"}}', "where.source"),
        (
            "/documents",
            '{"documents": [{"id": "n1", "text": "x", "metadata": {"source": "a\\ud800"}}]}',
            "documents.0.metadata.source",
        ),
        (
            "/documents",
            '{"documents": [{"id": "n1", "text": "x", "metadata": {"\\ud800": 1}}]}',
            "documents.0.metadata",
        ),
        (
            "/documents",
            '{"documents": [{"id": "n1", "text": "x", "metadata": {"a": [{"b": "\\udfff"}]}}]}',
            "documents.0.metadata.a[0].b",
        ),
    ],
)
def test_a_lone_surrogate_in_a_filter_or_metadata_is_a_422_naming_the_field(
    client: TestClient, index: Path, path: str, body: str, field: str
) -> None:
    response = client.post(path, content=body.encode("ascii"), headers=JSON)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"field '{field}': ") and "lone surrogate \\u" in detail, detail
    assert odqa.Manifest.read(index).counts["documents"] == 6  # nothing was added


@pytest.mark.parametrize("doc_id", ["a b", "tab\there", " lead", "new\nline"])
def test_an_id_with_whitespace_is_a_422_not_a_conflict(
    client: TestClient, index: Path, doc_id: str
) -> None:
    response = client.post("/documents", json={"documents": [{"id": doc_id, "text": "x"}]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("field 'documents.0.id': ")
    assert "whitespace" in response.json()["detail"]
    response = client.post("/documents", json={"documents": [{"id": "d1", "text": "x"}]})
    assert response.status_code == 409  # an id in the index already: the conflict it is
    assert odqa.Manifest.read(index).counts["documents"] == 6


def test_a_surrogate_pair_is_a_character_and_a_surrogate_in_a_name_is_no_500(
    client: TestClient,
) -> None:
    response = client.post("/search", content=b'{"query": "scurvy \\ud83d\\ude00"}', headers=JSON)
    assert response.status_code == 200 and response.json()["query"] == "scurvy \U0001f600"
    response = client.post("/search", content=b'{"query": "scurvy", "\\ud800": 1}', headers=JSON)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "request body: not valid Unicode: a lone surrogate in a field name or value"
    )
    response = client.post("/documents", json={"documents": [{"id": "", "text": "x"}]})
    assert response.status_code == 422
    assert response.json()["detail"] == "field 'documents.0.id': must not be empty"
    assert client.get("/health").status_code == 200


# -- security headers -----------------------------------------------------------------------


def assert_secured(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff", response.request.url
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_every_response_carries_the_security_headers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    responses = [
        client.get("/"),
        client.get("/static/page.js"),
        client.get("/static/page.css"),
        client.get("/health"),
        client.get("/info"),
        client.get("/openapi.json"),
        client.get("/nope"),  # 404
        client.post("/search", json={"query": "scurvy"}),
        client.post("/search", json={"query": 1}),  # 422
        client.post("/search", json={"query": "x" * 1_100_000}),  # 413, from the middleware
        client.post("/ask", json={"question": "why?"}),  # 409
        client.delete("/documents/nope"),  # 404
    ]
    assert [r.status_code for r in responses] == [200] * 6 + [404, 200, 422, 413, 409, 404]
    for response in responses:
        assert_secured(response)
    assert responses[0].headers["content-security-policy"] == PAGE_POLICY

    def broken(*args: object) -> None:
        raise RuntimeError("the index vanished")

    monkeypatch.setattr(client.app.state.service, "search", broken)
    response = client.post("/search", json={"query": "scurvy"})
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error (RuntimeError); the server's log has the details"
    }
    assert_secured(response)


def test_the_page_has_nothing_inline_that_its_policy_would_block() -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert "script-src 'self';" in PAGE_POLICY and "style-src 'self';" in PAGE_POLICY
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []  # every script is a file
    assert "<style" not in page and " style=" not in page
    assert re.findall(r"\son[a-z]+=", page) == []  # no inline event handlers
    script = (STATIC / "page.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "eval(" not in script and ".style" not in script


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_documentation_pages_allow_their_cdn_and_their_inline_script(
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert_secured(response)
    policy = response.headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in policy and "connect-src 'self'" in policy
    for inline in re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy.split("; style-src")[0]
    assert '"/openapi.json"' in response.text or "'/openapi.json'" in response.text


# -- /info shows no path of the server's ----------------------------------------------------


def test_info_names_the_index_and_its_models_without_their_paths(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    index = odqa.build_index(
        small_corpus, tmp_path / "my-index", retrievers=["bm25", "dense"], model=str(tiny_model)
    )
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["retrievers"]["dense"]["model"] == str(tiny_model.resolve())  # a path
    with TestClient(create_app(index)) as client:
        info = client.get("/info").json()
    text = json.dumps(info)
    for secret in (str(tmp_path), str(tiny_model.parent), "/tmp", str(Path.home())):
        assert secret not in text
    index_info = info["index"]
    assert "path" not in index_info and index_info["name"] == "my-index"
    assert index_info["source"] == small_corpus.name == "corpus.jsonl"
    assert index_info["settings"]["dense"]["model"] == tiny_model.name
    assert index_info["settings"]["dense"]["sha256"] == manifest["retrievers"]["dense"]["sha256"]
    assert index_info["settings"]["bm25"] == manifest["retrievers"]["bm25"]
    assert index_info["chunking"]["tokenizer"] == tiny_model.name
    assert index_info["retrievers"] == ["bm25", "dense", "hybrid"]
    assert index_info["documents"] == 6 and index_info["counts"]["documents"] == 6
    assert index_info["created_at"] == manifest["created_at"]


def test_refusals_name_the_index_without_the_servers_paths(client: TestClient, index: Path) -> None:
    for body in (
        {"query": "vitamin", "retriever": "colbert"},  # the index has no such retriever
        {"query": "vitamin", "where": {"colour": "red"}},  # nor such a field
    ):
        response = client.post("/search", json=body)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert str(index.parent) not in detail and "/tmp" not in detail, detail
    assert response.json()["detail"].startswith("field 'where.colour'")
    response = client.post("/search", json={"query": "vitamin", "retriever": "colbert"})
    assert response.json()["detail"].startswith("idx: the index has no 'colbert' retriever")


@pytest.mark.parametrize(
    ("code", "status", "says"),
    [
        (errno.ENOSPC, 507, "no space left on the server's disk"),
        (errno.EDQUOT, 507, "no space left on the server's disk"),
        (errno.EROFS, 503, "read-only file system"),
        (errno.EACCES, 503, "permission denied"),
    ],
)
def test_a_write_the_disk_refuses_says_why_and_changes_nothing(
    client: TestClient,
    index: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    status: int,
    says: str,
) -> None:
    import odqa.index.updates as updates

    def refused(*args, **kwargs) -> None:
        raise OSError(code, os.strerror(code), str(index / "documents.jsonl"))

    monkeypatch.setattr(updates.fs, "save_array", refused)
    response = client.post("/documents", json={"documents": [{"id": "n1", "text": "niacin"}]})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert says in detail and "the index is unchanged" in detail
    assert_secured(response)
    assert str(index) not in detail and str(index.parent) not in detail
    assert odqa.Manifest.read(index).counts["documents"] == 6
    assert client.post("/search", json={"query": "vitamin"}).status_code == 200


def test_a_model_id_is_shown_as_it_is() -> None:
    from odqa.server.schemas import public_name, without_paths

    assert public_name("sentence-transformers/all-MiniLM-L6-v2") == (
        "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert public_name("/srv/models/reader-v2") == "reader-v2"
    assert public_name("~/models/reader") == "reader"
    assert public_name("C:\\models\\reader") == "reader"
    assert public_name("https://example.org/corpus.jsonl") == "https://example.org/corpus.jsonl"
    assert without_paths({"a": ["/x/y", 1, {"b": "/z"}], "c": None}) == {
        "a": ["y", 1, {"b": "z"}],
        "c": None,
    }


# -- slow request headers ----------------------------------------------------------------------


@contextlib.contextmanager
def served(index: Path, header_timeout: float) -> Iterator[int]:
    """uvicorn in a thread on a free loopback port, with odqa serve's header timeout."""
    port = free_port()
    config = uvicorn.Config(
        create_app(index),
        port=port,
        log_level="warning",
        http=header_timeout_protocol(header_timeout),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


def wait_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and how long that took."""
    start = time.monotonic()
    sock.settimeout(limit)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(4096):
            received += chunk
    return received, time.monotonic() - start


def test_a_client_that_never_finishes_its_headers_is_cut_off(index: Path) -> None:
    with served(index, header_timeout=1.0) as port:
        partial = socket.create_connection(("127.0.0.1", port))
        silent = socket.create_connection(("127.0.0.1", port))
        with partial, silent:
            partial.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            received, took = wait_closed(partial, 5)
            assert 0.8 <= took <= 3, took
            assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert b"request headers not complete within 1 s" in received
            received, _ = wait_closed(silent, 5)  # sent nothing: closed, nothing said
            assert received == b""

        # headers that trickle in within the limit, then a second, slow request on the
        # same kept-alive connection: the first is answered, the second cut off
        with socket.create_connection(("127.0.0.1", port)) as sock:
            for piece in (b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                sock.sendall(piece)
                time.sleep(0.25)
            sock.settimeout(5)
            first = sock.recv(4096)
            assert first.startswith(b"HTTP/1.1 200 OK") and b'{"status":"ok"}' in first
            sock.sendall(b"GET /health HT")
            received, took = wait_closed(sock, 5)
            assert received.startswith(b"HTTP/1.1 408") and took <= 3


def test_fifty_slow_clients_do_not_stop_a_normal_request(index: Path) -> None:
    with served(index, header_timeout=3.0) as port:
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        try:
            for sock in slow:
                sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\n")
            opened = time.monotonic()
            response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            assert response.status_code == 200 and response.json() == {"status": "ok"}
            response = httpx.post(f"http://127.0.0.1:{port}/search", json={"query": "scurvy"})
            assert response.status_code == 200
            assert time.monotonic() - opened < 3  # while all fifty were still held
            closed = [wait_closed(sock, 8) for sock in slow]
            assert all(data.startswith(b"HTTP/1.1 408") for data, _ in closed)
            assert time.monotonic() - opened <= 3 + 3
        finally:
            for sock in slow:
                sock.close()


@pytest.mark.slow
def test_odqa_serve_takes_a_header_timeout(index: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "odqa.cli", "serve", str(index), "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--header-timeout", "1.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            assert server.poll() is None, server.stdout.read().decode()
            assert time.monotonic() < deadline, "odqa serve did not start"
            time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n")
            received, took = wait_closed(sock, 10)
        assert received.startswith(b"HTTP/1.1 408") and 1.3 <= took <= 4, (received, took)
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0].decode()
    assert "request headers not complete within 1.5 s; connection closed" in output


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_bad_header_timeout_is_one_line(index: Path, value: str) -> None:
    result = CliRunner().invoke(cli_app, ["serve", str(index), "--header-timeout", value])
    assert result.exit_code == 2, result.output
    assert "--header-timeout takes a positive number of seconds" in result.output
    assert "Traceback" not in result.output


# -- the page under its policy, in headless Chromium ------------------------------------------


@pytest.mark.browser
def test_the_page_works_under_its_content_security_policy(index: Path, tmp_path: Path) -> None:
    chromium, chromedriver = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    if not (chromium.exists() and chromedriver.exists()):
        if os.environ.get("CI"):
            pytest.fail("needs Debian's chromium and chromium-driver", pytrace=False)
        pytest.skip("needs Debian's chromium and chromium-driver")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--disable-background-networking")
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with served(index, header_timeout=10.0) as port:
        driver = webdriver.Chrome(options=options, service=Service(str(chromedriver)))
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            wait = WebDriverWait(driver, 30)
            wait.until(ready.element_to_be_clickable((By.ID, "submit")))  # page.js ran
            assert driver.find_element(By.ID, "submit").text == "Search"
            # the style sheet applied: the form is a flex row, as page.css says
            form = driver.find_element(By.ID, "ask-form")
            assert form.value_of_css_property("display") == "flex"
            driver.find_element(By.ID, "question").send_keys("vitamin C scurvy")
            driver.find_element(By.ID, "submit").click()
            wait.until(ready.text_to_be_present_in_element((By.ID, "sources"), "d1"))
            violations = [
                entry["message"]
                for entry in driver.get_log("browser")
                if "Content Security Policy" in entry["message"]
            ]
            assert violations == []
            # and the policy is enforced: an inline script is refused
            driver.execute_script(
                "const s = document.createElement('script');"
                "s.textContent = 'window.inlineRan = true'; document.head.appendChild(s);"
            )
            assert driver.execute_script("return window.inlineRan === true") is False
        finally:
            driver.quit()
