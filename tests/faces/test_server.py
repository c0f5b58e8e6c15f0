"""The HTTP service: every endpoint, bad input, the write rule, updates under load, batching,
and a shutdown during an update."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import odqa
from odqa.cli import app as cli_app
from odqa.read.answer import Answer, Evidence
from odqa.server import Limits, create_app

NEW = {"id": "n1", "title": "Pellagra", "text": "Pellagra results from a lack of niacin."}


class VitaminReader:
    """Answers "vitamin C" from the first passage that holds it."""

    def read(self, question: str, passages: Sequence[Evidence]) -> Answer:
        for item in passages:
            start = item.text.find("vitamin C")
            if start >= 0:
                cited = replace(item, start=start, end=start + len("vitamin C"))
                return Answer("vitamin C", 0.9, "span", (cited,))
        return Answer("", float("nan"), "none")


@pytest.fixture()
def index(tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ODQA_API_KEY", raising=False)
    return odqa.build_index(small_corpus, tmp_path / "idx", retrievers=["bm25"], language="en")


@pytest.fixture()
def serve(index: Path) -> Iterator:
    """``serve(**options)``: a TestClient on the index's app, its lifespan running."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(TestClient(create_app(index, **options)))


def search_ids(client: TestClient, query: str, k: int = 10) -> list[str]:
    response = client.post("/search", json={"query": query, "k": k})
    assert response.status_code == 200, response.text
    return [hit["doc_id"] for hit in response.json()["hits"]]


def test_health_info_and_openapi(serve) -> None:
    client = serve()
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["index"]["documents"] == 6 and info["index"]["retrievers"] == ["bm25"]
    assert info["index"]["name"] == "idx" and "path" not in info["index"]  # no server paths
    assert info["index"]["source"] == "corpus.jsonl"
    assert info["reader"] is None and info["writes"] == "disabled"
    assert info["limits"] == {"max_k": 100, "max_query_chars": 2000, "max_body_bytes": 1_000_000}
    schema = client.get("/openapi.json").json()
    assert {"/search", "/ask", "/health", "/info", "/documents", "/documents/{doc_id}"} <= set(
        schema["paths"]
    )
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert client.get("/docs").status_code == 200


def test_search_returns_ranked_hits_with_text(serve) -> None:
    response = serve().post("/search", json={"query": "vitamin C scurvy", "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["retriever"] == "bm25" and body["k"] == 3
    assert [hit["doc_id"] for hit in body["hits"]] == ["d1", "d2"]  # BM25: only these match
    top = body["hits"][0]
    assert top["doc_id"] == "d1" and top["rank"] == 1 and top["score"] > 0
    assert top["text"] == "Scurvy is caused by a lack of vitamin C." and top["title"] == "Scurvy"


def test_ask_needs_a_reader(serve) -> None:
    response = serve().post("/ask", json={"question": "What causes scurvy?"})
    assert response.status_code == 409
    assert "no reader is configured" in response.json()["detail"]


def test_ask_answers_with_evidence_and_sources(serve) -> None:
    client = serve(reader=VitaminReader(), k=2)
    body = client.post("/ask", json={"question": "Which vitamin prevents scurvy?"}).json()
    assert body["answer"] == "vitamin C" and body["kind"] == "span" and body["score"] == 0.9
    evidence = body["evidence"][0]
    assert evidence["doc_id"] == "d1"
    assert evidence["text"][evidence["start"] : evidence["end"]] == "vitamin C"
    assert [hit["doc_id"] for hit in body["passages"]] == ["d1", "d2"]
    none = client.post("/ask", json={"question": "ocean", "top_k": 1}).json()
    assert none["kind"] == "none" and none["score"] is None  # NaN is not JSON


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/search", b'{"query": "scurvy", "k": ', "malformed JSON at character"),
        ("/search", b'["scurvy"]', "request body: Input should be"),
        ("/search", b"{}", "missing field 'query'"),
        ("/search", {"query": "scurvy", "k": "ten"}, "field 'k': Input should be a valid integer"),
        ("/search", {"query": "scurvy", "k": "10"}, "field 'k'"),
        ("/search", {"query": 42}, "field 'query': Input should be a valid string"),
        ("/search", {"query": "scurvy", "top": 3}, "unknown field 'top'"),
        ("/search", {"query": "   "}, "field 'query': Value error, must not be blank"),
        ("/search", {"query": "scurvy", "k": 0}, "greater than or equal to 1"),
        ("/search", {"query": "scurvy", "k": 101}, "'k' is 101; the limit is 100"),
        ("/search", {"query": "x" * 2001}, "'query' is 2,001 characters; the limit is 2,000"),
        ("/search", {"query": "scurvy", "retriever": "colbert"}, "no 'colbert' retriever"),
        ("/ask", {"question": "why?", "top_k": 500}, "'top_k' is 500; the limit is 100"),
        ("/ask", {"question": "why?", "k": 3}, "unknown field 'k'"),
    ],
)
def test_bad_input_is_a_422_that_says_what_is_wrong(
    serve, path: str, body: bytes | dict, message: str
) -> None:
    client = serve(reader=VitaminReader())
    if isinstance(body, bytes):
        headers = {"Content-Type": "application/json"}
        response = client.post(path, content=body, headers=headers)
    else:
        response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_a_huge_body_is_refused_with_413(serve) -> None:
    client = serve()
    response = client.post("/search", json={"query": "x" * 1_100_000})
    assert response.status_code == 413
    assert response.json()["detail"] == "request body over the limit of 1,000,000 bytes"
    small = serve(limits=Limits(max_body_bytes=1000))
    chunks = (b" " * 400 for _ in range(5))  # streamed: no Content-Length
    response = small.post("/search", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "1,000 bytes" in response.json()["detail"]
    assert small.post("/search", json={"query": "scurvy"}).status_code == 200


def test_writes_are_off_without_a_key_or_allow_writes(serve) -> None:
    client = serve()
    response = client.post("/documents", json={"documents": [NEW]})
    assert response.status_code == 403 and "--allow-writes" in response.json()["detail"]
    assert client.delete("/documents/d1").status_code == 403
    assert "d1" in search_ids(client, "scurvy")


def test_writes_need_the_api_key_when_one_is_set(serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODQA_API_KEY", "s3cret")
    client = serve(allow_writes=True)  # the key rules even so
    assert client.get("/info").json()["writes"] == "api-key"
    for headers in ({}, {"X-API-Key": "wrong"}):
        response = client.post("/documents", json={"documents": [NEW]}, headers=headers)
        assert response.status_code == 401 and "X-API-Key" in response.json()["detail"]
    response = client.post("/documents", json={"documents": [NEW]}, headers={"X-API-Key": "s3cret"})
    assert response.status_code == 200
    assert client.delete("/documents/n1").status_code == 401
    assert client.delete("/documents/n1", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_add_then_search_finds_it_and_delete_then_it_is_gone(serve, index: Path) -> None:
    client = serve(allow_writes=True)
    assert client.get("/info").json()["writes"] == "open"
    assert "n1" not in search_ids(client, "niacin pellagra")
    response = client.post("/documents", json={"documents": [NEW]})
    assert response.status_code == 200
    assert response.json() == {
        "report": {"added_documents": 1, "added_passages": 1, "skipped_empty": 0},
        "documents": 7,
    }
    assert search_ids(client, "niacin pellagra")[0] == "n1"
    assert client.get("/info").json()["index"]["documents"] == 7
    response = client.delete("/documents/d1")
    assert response.status_code == 200 and response.json()["documents"] == 6
    assert "d1" not in search_ids(client, "vitamin C scurvy")
    assert odqa.Manifest.read(index).counts["documents"] == 6


def test_bad_updates_are_refused_and_change_nothing(serve) -> None:
    client = serve(allow_writes=True)
    cases = [
        ({"documents": []}, 422, "field 'documents'"),
        ({"documents": [NEW, NEW]}, 422, "'n1' appears twice"),
        ({"documents": [{"id": "n2"}]}, 422, "missing field 'documents.0.text'"),
        ({"documents": [{**NEW, "url": "x"}]}, 422, "unknown field 'documents.0.url'"),
        ({"documents": [{**NEW, "id": "d1"}]}, 409, "'d1' is already in the index"),
    ]
    for body, status, message in cases:
        response = client.post("/documents", json=body)
        assert response.status_code == status and message in response.json()["detail"]
    response = client.delete("/documents/nope")
    assert response.status_code == 404 and "'nope'" in response.json()["detail"]
    assert client.get("/info").json()["index"]["documents"] == 6


def test_searches_during_an_add_all_succeed(serve) -> None:
    client = serve(allow_writes=True)
    statuses: list[int] = []
    done = threading.Event()

    def search_until_done() -> None:
        while not done.is_set() or len(statuses) < 20:
            statuses.append(client.post("/search", json={"query": "vitamin", "k": 3}).status_code)

    threads = [threading.Thread(target=search_until_done) for _ in range(4)]
    for thread in threads:
        thread.start()
    documents = [{"id": f"n{i}", "text": f"Pellagra case {i} lacked niacin."} for i in range(50)]
    response = client.post("/documents", json={"documents": documents})
    done.set()
    for thread in threads:
        thread.join()
    assert response.status_code == 200
    assert len(statuses) >= 20 and set(statuses) == {200}
    assert len(search_ids(client, "niacin pellagra", k=100)) == 50


TOPICS = [("scurvy", "d1"), ("rickets", "d2"), ("thiamine", "d3"), ("kinases", "d4")]


def test_concurrent_searches_are_batched(index: Path) -> None:
    app = create_app(index, batch_window=0.25)
    calls: list[tuple[int, int]] = []

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            searcher = app.state.service.searcher
            original = searcher.search

            def counted(queries, k, **options):
                calls.append((len(queries), k))
                return original(queries, k, **options)

            searcher.search = counted
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://odqa") as client:
                bodies = [{"query": TOPICS[i % 4][0], "k": 1 + i % 2} for i in range(16)]
                return await asyncio.gather(*(client.post("/search", json=b) for b in bodies))

    responses = asyncio.run(run())
    assert [response.status_code for response in responses] == [200] * 16
    assert sorted(calls) == [(8, 1), (8, 2)]  # one call per k, eight queries each
    for i, response in enumerate(responses):  # each got its own query's hits
        assert response.json()["hits"][0]["doc_id"] == TOPICS[i % 4][1]


def test_serve_refuses_a_missing_index_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "error:" in result.output and "no such index directory" in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_shutdown_during_an_update_waits_for_it(index: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "odqa.cli", "serve", str(index), "--port", str(port)]
    command += ["--allow-writes", "--max-body-bytes", "20000000"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            assert server.poll() is None, server.stdout.read().decode()
            time.sleep(0.2)
        documents = [
            {"id": f"n{i}", "text": f"Pellagra case {i} lacked niacin in a maize diet."}
            for i in range(20_000)
        ]
        outcome: dict[str, httpx.Response] = {}
        body = json.dumps({"documents": documents})
        headers = {"Content-Type": "application/json"}

        def add() -> None:
            outcome["add"] = httpx.post(
                f"{url}/documents", content=body, headers=headers, timeout=300
            )

        writer = threading.Thread(target=add)
        writer.start()
        while not list(index.parent.glob(".idx.partial-*")):  # the update has begun
            assert writer.is_alive(), "the update finished before it was seen running"
            time.sleep(0.002)
        server.send_signal(signal.SIGTERM)
        writer.join(300)
        assert server.wait(120) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        if server.poll() is None:
            server.kill()
    assert outcome["add"].status_code == 200, outcome["add"].text
    assert outcome["add"].json()["documents"] == 20_006
    assert not list(index.parent.glob(".idx.*-*"))  # no staging copy left behind
    manifest = odqa.Manifest.read(index)
    searcher = odqa.Searcher(index)
    assert manifest.counts["documents"] == searcher.collection.num_documents == 20_006
    hits = searcher.search(["pellagra case 19999 niacin"], 1, retriever="bm25")[0]
    assert hits[0].doc_id == "n19999"


def test_create_app_takes_search_options(index: Path) -> None:
    options = odqa.SearchOptions(retriever="bm25", fusion="rrf")
    with TestClient(create_app(index, options, k=1)) as client:
        info = client.get("/info").json()
        assert info["index"]["default_retriever"] == "bm25" and info["top_k"] == 1
        assert client.app.state.service.searcher.options == options
    with TestClient(create_app(index, device="cpu")) as client:  # or its fields as keywords
        assert client.app.state.service.options.device == "cpu"
    with pytest.raises(odqa.OdqaError, match="no 'dense' retriever"):
        create_app(index, retriever="dense")
    with pytest.raises(odqa.OdqaError, match="unknown search settings"):
        create_app(index, top_k=3)


def test_ask_with_the_sentence_reader(serve) -> None:
    client = serve(reader=odqa.make_reader("sentence", device="cpu"), k=3)
    assert client.get("/info").json()["reader"] == "SentenceReader"
    body = client.post("/ask", json={"question": "What causes rickets?"}).json()
    assert (
        body["kind"] == "sentence" and body["answer"] == "Rickets comes from too little vitamin D."
    )
    source = body["evidence"][0]
    assert (
        source["doc_id"] == "d2"
        and source["text"][source["start"] : source["end"]] == body["answer"]
    )


@pytest.mark.slow
def test_serve_without_a_reader_answers_with_sentences(index: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "odqa.cli", "serve", str(index), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            assert server.poll() is None, server.stdout.read().decode()
            time.sleep(0.2)
        assert httpx.get(f"{url}/info").json()["reader"] == "SentenceReader"
        response = httpx.post(f"{url}/ask", json={"question": "What causes scurvy?"}, timeout=60)
    finally:
        server.terminate()
        server.wait(60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["answer"]) == (
        "sentence",
        "Scurvy is caused by a lack of vitamin C.",
    )
