"""The generative reader: prompt, citations, a tiny local causal LM, a fake OpenAI endpoint."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import shutil
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from aiohttp import web
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel
from typer.testing import CliRunner

import odqa
from helpers import TOKENIZER_FILES, save_hand_set_reader
from odqa import make_reader
from odqa.cli import app
from odqa.errors import OdqaError
from odqa.models import embedded_model_path
from odqa.read.answer import Evidence
from odqa.read.generative import (
    Generation,
    GenerativeReader,
    LocalCausalLM,
    OpenAICompatible,
    build_prompt,
    parse_citations,
)
from odqa.read.prompt import SYSTEM_PROMPT, Message

PASSAGES = (
    Evidence("d1", "d1#0", "Rickets comes from too little vitamin D.", "Rickets", 3.0),
    Evidence("d2", "d2#0", "Scurvy is caused by a lack of vitamin C.", "Scurvy", 2.0),
    Evidence("d3", "d3#0", "Beriberi follows a deficiency of thiamine.", "", 1.0),
)
ANSWER = "Scurvy comes from a lack of vitamin C [1]."
KEY_ENV = "ODQA_TEST_API_KEY"


# --- prompt and citations ---------------------------------------------------------------------


def test_build_prompt_numbers_the_passages_after_the_question() -> None:
    system, user = build_prompt(" what causes scurvy? ", PASSAGES)
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert "only" in SYSTEM_PROMPT and "[1]" in SYSTEM_PROMPT and "don't know" in SYSTEM_PROMPT
    assert user["role"] == "user"
    assert user["content"] == (
        "Question: what causes scurvy?\n\nPassages:\n\n"
        "[1] Rickets\nRickets comes from too little vitamin D.\n\n"
        "[2] Scurvy\nScurvy is caused by a lack of vitamin C.\n\n"
        "[3]\nBeriberi follows a deficiency of thiamine."
    )


@pytest.mark.parametrize(
    ("text", "cited"),
    [
        ("Vitamin C [2].", [2]),
        ("Vitamin C [2] and sunlight [1, 3].", [2, 1, 3]),
        ("Both [3][1], again [1] and [ 3 ; 2 ].", [3, 1, 2]),
        ("No citation here.", []),
        ("Brackets without numbers [a] [] [1a].", []),
    ],
)
def test_parse_citations(text: str, cited: list[int]) -> None:
    assert parse_citations(text, 3) == cited


def test_parse_citations_drops_and_counts_numbers_out_of_range() -> None:
    with pytest.warns(UserWarning, match=r"2 citation\(s\) outside the 3 passages.*\[0\], \[7\]"):
        assert parse_citations("See [0], [2] and [2, 7].", 3) == [2]


# --- the reader, with a fake backend ----------------------------------------------------------


class FixedBackend:
    """Always writes ``text``; records the messages it was given."""

    def __init__(self, text: str, logprob: float | None = None) -> None:
        self.text = text
        self.logprob = logprob
        self.calls: list[tuple[list[Message], int, float]] = []

    def generate(
        self, messages: Sequence[Message], max_new_tokens: int, temperature: float
    ) -> Generation:
        self.calls.append((list(messages), max_new_tokens, temperature))
        return Generation(self.text, self.logprob)


def test_reader_maps_each_citation_to_its_passage() -> None:
    backend = FixedBackend("Vitamin C [2].")
    answer = GenerativeReader(backend, max_new_tokens=32).read("what causes scurvy?", PASSAGES)
    assert (answer.text, answer.kind) == ("Vitamin C [2].", "generated")
    assert answer.evidence == (dataclasses.replace(PASSAGES[1], citation=2),)
    assert math.isnan(answer.score)
    assert backend.calls == [(build_prompt("what causes scurvy?", PASSAGES), 32, 0.0)]


def test_reader_keeps_citation_order_and_the_score_of_log_probabilities() -> None:
    backend = FixedBackend(" Thiamine [3], not vitamin D [1][3]. ", logprob=math.log(0.5))
    answer = GenerativeReader(backend).read("what causes beriberi?", PASSAGES)
    assert answer.text == "Thiamine [3], not vitamin D [1][3]."
    assert [(item.doc_id, item.citation) for item in answer.evidence] == [("d3", 3), ("d1", 1)]
    assert answer.score == pytest.approx(0.5)


def test_reader_without_citations_keeps_every_passage() -> None:
    answer = GenerativeReader(FixedBackend("I don't know.")).read("why?", PASSAGES)
    assert answer.kind == "generated"
    assert answer.evidence == PASSAGES
    with pytest.warns(UserWarning, match="1 citation"):
        answer = GenerativeReader(FixedBackend("See [9].")).read("why?", PASSAGES)
    assert answer.evidence == PASSAGES


def test_reader_edge_cases() -> None:
    backend = FixedBackend("   ", logprob=-1.0)
    reader = GenerativeReader(backend)
    empty = reader.read("why?", PASSAGES)
    assert (empty.kind, empty.text, empty.evidence) == ("none", "", ())
    assert reader.read("why?", [" ", ""]) == odqa.read.answer.Answer("", 0.0, "none")
    assert len(backend.calls) == 1  # no passage: the backend is not asked
    tupled = GenerativeReader(FixedBackend("[1]")).read("why?", [("Some text.", "d9", "d9#0", 1.5)])
    assert tupled.evidence == (Evidence("d9", "d9#0", "Some text.", "", 1.5, citation=1),)
    with pytest.raises(OdqaError, match="empty question"):
        reader.read("  ", PASSAGES)
    with pytest.raises(OdqaError, match="max_new_tokens"):
        GenerativeReader(backend, max_new_tokens=0)


# --- a tiny local causal LM -------------------------------------------------------------------


def save_parrot_lm(folder: Path, word: str = "vitamin", context: int = 128) -> Path:
    """A 2-layer GPT-2 with the MiniLM tokenizer that always writes ``word``, with probability
    ~1: its final layer norm outputs a constant vector that only ``word``'s row of the untied
    output matrix matches."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copy(embedded_model_path() / name, folder / name)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size,
        n_positions=context,
        n_embd=16,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(2.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[tokenizer.convert_tokens_to_ids(word)] = 2.0
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def parrot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_parrot_lm(tmp_path_factory.mktemp("parrot-lm"))


@pytest.fixture(scope="module")
def local_backend(parrot: Path) -> LocalCausalLM:
    return LocalCausalLM(parrot, device="cpu", precision="fp32")


def test_local_causal_lm_generates_text_with_a_score(local_backend: LocalCausalLM) -> None:
    answer = GenerativeReader(local_backend, max_new_tokens=3).read("what?", PASSAGES)
    assert (answer.text, answer.kind) == ("vitamin vitamin vitamin", "generated")
    assert answer.score == pytest.approx(1.0, abs=1e-4)
    assert answer.evidence == PASSAGES  # no citation
    sampled = local_backend.generate(build_prompt("what?", PASSAGES), 2, temperature=0.7)
    assert sampled.text == "vitamin vitamin"


def test_local_causal_lm_prompt_without_and_with_a_chat_template(parrot: Path) -> None:
    backend = LocalCausalLM(parrot, device="cpu")
    messages = build_prompt("what?", PASSAGES[:1])
    assert backend.render(messages) == (
        f"System: {SYSTEM_PROMPT}\n\nUser: {messages[1]['content']}\n\nAssistant:"
    )
    backend.tokenizer.chat_template = (
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    assert backend.render(messages) == (
        f"<system>{SYSTEM_PROMPT}<user>{messages[1]['content']}<assistant>"
    )
    backend.tokenizer.chat_template = (
        "{% if messages[0].role == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    )
    assert backend.render(messages) == (
        f"<user>{SYSTEM_PROMPT}\n\n{messages[1]['content']}<assistant>"
    )
    assert backend.generate(messages, 1, 0.0).text == "vitamin"


def test_local_causal_lm_cuts_the_passages_to_fit_its_context(
    local_backend: LocalCausalLM,
) -> None:
    long = [Evidence("d1", "d1#0", "scurvy " * 300, "Long")]
    messages = build_prompt("what causes scurvy?", long)
    with pytest.warns(UserWarning, match="passages were cut"):
        ids = local_backend.fit(messages, 8)
    assert 100 < len(ids) <= 128 - 8
    prompt = local_backend.tokenizer.decode(ids)
    assert "what causes scurvy?" in prompt and "[ 1 ] long scurvy" in prompt  # wordpieces
    assert prompt.endswith(" assistant : [SEP]")  # the passage's end was cut, not the prompt's
    with pytest.warns(UserWarning, match="passages were cut"):
        answer = GenerativeReader(local_backend, max_new_tokens=8).read("why?", long)
    assert answer.text == " ".join(["vitamin"] * 8)
    with pytest.raises(OdqaError, match="no room"):
        local_backend.fit(messages, 128)


def test_local_causal_lm_refuses_other_folders(tmp_path: Path) -> None:
    with pytest.raises(OdqaError, match="not a model folder"):
        LocalCausalLM(tmp_path / "absent", device="cpu")
    reader_folder = save_hand_set_reader(tmp_path / "extractive")
    with pytest.raises(OdqaError, match="not a trained causal language model"):
        LocalCausalLM(reader_folder, device="cpu")


# --- a fake OpenAI-compatible endpoint --------------------------------------------------------


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }


class ChatServer:
    """``POST /{scenario}/v1/chat/completions`` on 127.0.0.1, in a thread; counts requests and
    keeps their headers and JSON bodies per scenario."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.requests: defaultdict[str, list[tuple[dict[str, str], Any]]] = defaultdict(list)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def base(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}/v1"

    async def _handle(self, request: web.Request) -> web.Response:
        scenario = request.match_info["scenario"]
        self.hits[scenario] += 1
        count = self.hits[scenario]
        body = await request.read()
        self.requests[scenario].append((dict(request.headers), json.loads(body)))
        ok = web.json_response(completion(ANSWER))
        if scenario == "limited" and count == 1:
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": "1"}
            )
        if scenario == "flaky" and count <= 2:
            return web.Response(text="upstream failed", status=500)
        if scenario == "garbled":
            return web.Response(text='{"choices": [', content_type="application/json")
        if scenario == "empty":
            return web.json_response({"choices": []})
        if scenario == "hang":
            await asyncio.sleep(30)
        if scenario == "denied":
            return web.json_response(
                {"error": {"message": "Incorrect API key provided"}}, status=401
            )
        return ok

    async def _start(self) -> None:
        application = web.Application()
        application.router.add_post("/{scenario}/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(
            application, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    chat.start()
    try:
        yield chat
    finally:
        chat.stop()


def endpoint(server: ChatServer, scenario: str, **options: Any) -> OpenAICompatible:
    settings = {"api_key_env": KEY_ENV, "timeout": 5.0, "retries": 2, "backoff": 0.01} | options
    return OpenAICompatible(server.base(scenario), "tiny-chat", **settings)


def test_endpoint_success_sends_the_key_and_the_request(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    backend = endpoint(server, "ok")
    answer = GenerativeReader(backend, max_new_tokens=40).read("what causes scurvy?", PASSAGES)
    assert answer.text == ANSWER and math.isnan(answer.score)
    assert answer.evidence == (dataclasses.replace(PASSAGES[0], citation=1),)
    headers, payload = server.requests["ok"][-1]
    assert headers["Authorization"] == "Bearer sk-test"
    assert payload == {
        "model": "tiny-chat",
        "messages": build_prompt("what causes scurvy?", PASSAGES),
        "max_tokens": 40,
        "temperature": 0.0,
    }


def test_endpoint_honours_retry_after(server: ChatServer) -> None:
    started = time.monotonic()
    assert endpoint(server, "limited").generate([], 8, 0.0).text == ANSWER
    assert time.monotonic() - started >= 0.9  # Retry-After: 1, not the 0.01 s backoff
    assert server.hits["limited"] == 2
    assert "Authorization" not in server.requests["limited"][0][0]  # no key in the environment


def test_endpoint_retries_server_errors(server: ChatServer) -> None:
    assert endpoint(server, "flaky").generate([], 8, 0.0).text == ANSWER
    assert server.hits["flaky"] == 3


@pytest.mark.parametrize(
    ("scenario", "problem"),
    [("garbled", "malformed JSON"), ("empty", r"no choices\[0\]\.message\.content")],
)
def test_endpoint_bad_responses_fail_after_retries(
    server: ChatServer, scenario: str, problem: str
) -> None:
    with pytest.raises(OdqaError, match=f"{scenario}/v1/chat/completions: {problem}.*3 attempts"):
        endpoint(server, scenario).generate([], 8, 0.0)
    assert server.hits[scenario] == 3


def test_endpoint_timeouts_fail_after_retries(server: ChatServer) -> None:
    started = time.monotonic()
    with pytest.raises(OdqaError, match=r"hang/v1/chat/completions: timed out after 0.2s.*2 att"):
        endpoint(server, "hang", timeout=0.2, retries=1).generate([], 8, 0.0)
    assert server.hits["hang"] == 2
    assert time.monotonic() - started < 5


def test_endpoint_client_errors_fail_at_once(server: ChatServer) -> None:
    with pytest.raises(OdqaError, match=r"HTTP 401: .*Incorrect API key.*set \$ODQA_TEST_API_KEY"):
        endpoint(server, "denied").generate([], 8, 0.0)
    assert server.hits["denied"] == 1


def test_endpoint_connection_errors_and_settings() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = OpenAICompatible(f"http://127.0.0.1:{port}/v1", "m", retries=1, backoff=0.01)
    with pytest.raises(OdqaError, match=r"connection error.*2 attempts"):
        closed.generate([], 8, 0.0)
    assert closed.delay(3, None) == pytest.approx(0.04)
    assert closed.delay(1, 500.0) == 30.0  # Retry-After is capped at max_wait
    with pytest.raises(OdqaError, match="http"):
        OpenAICompatible("localhost:8000/v1", "m")
    with pytest.raises(OdqaError, match="model name"):
        OpenAICompatible("http://localhost:8000/v1", "")


# --- the ask command --------------------------------------------------------------------------


def test_ask_command_with_an_endpoint(
    server: ChatServer, tmp_path: Path, small_corpus: Path
) -> None:
    index_dir = odqa.build_index(small_corpus, tmp_path / "idx", retrievers=["bm25"], language="en")
    runner = CliRunner()
    args = ["ask", str(index_dir), "lack of vitamin C", "--top-k", "2", "--reader", "generative"]
    endpoint_args = ["--api-base", server.base("ok"), "--api-model", "tiny-chat"]
    key = ["--api-key-env", "MY_KEY"]
    result = runner.invoke(app, [*args, *endpoint_args, *key], env={"MY_KEY": "sk-cli"})
    assert result.exit_code == 0, result.output
    assert f"answer: {ANSWER}" in result.output
    assert "[1] d1 — Scurvy" in result.output
    assert "Scurvy is caused by a lack of vitamin C." in result.output
    assert server.requests["ok"][-1][0]["Authorization"] == "Bearer sk-cli"
    prompt = server.requests["ok"][-1][1]["messages"][1]["content"]
    assert "\n[1] Scurvy\n" in prompt and "\n[2] Rickets\n" in prompt  # the top 2 passages
    result = runner.invoke(app, [*args, *endpoint_args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert (payload["kind"], payload["text"], payload["score"]) == ("generated", ANSWER, None)
    assert [(item["doc_id"], item["citation"]) for item in payload["evidence"]] == [("d1", 1)]
    for extra, message in [
        ([], "exactly one of --reader-model"),
        (["--api-base", server.base("ok")], "--api-base needs --api-model"),
        ([*endpoint_args, "--no-answer-threshold", "0.5"], "extractive reader only"),
    ]:
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 2 and message in result.output, result.output


def test_make_reader_kinds(parrot: Path) -> None:
    reader = make_reader("generative", parrot, device="cpu")
    assert isinstance(reader, GenerativeReader) and isinstance(reader.backend, LocalCausalLM)
    with pytest.raises(OdqaError, match="yes/no reader needs"):
        make_reader("yesno")
    with pytest.raises(OdqaError, match="'api_base' is for the generative reader only"):
        make_reader("extractive", parrot, api_base="http://localhost:8000/v1")
    with pytest.raises(OdqaError, match="available: extractive, sentence, yesno, generative"):
        make_reader("abstractive", parrot)
