"""An OpenAI-compatible chat-completions endpoint as a generative backend.

Each generation is one ``POST {api_base}/chat/completions`` with ``model``, ``messages``,
``max_tokens`` and ``temperature``; the API key, when its environment variable is set, goes in
``Authorization: Bearer``. The answer is ``choices[0].message.content``.

**Retry rule.** Timeouts, connection errors, HTTP 429 and 5xx, and a response without JSON or
without ``choices[0].message.content`` are retried up to ``retries`` times, after
``backoff * 2**(n-1)`` seconds (attempt ``n``) or the ``Retry-After`` seconds the server asks
for, both capped at ``max_wait``; then an :class:`OdqaError` names the endpoint and the last
failure. Any other 4xx fails at once with its status and the start of its body.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from odqa.errors import OdqaError
from odqa.read.backends import Generation
from odqa.read.prompt import Message

EXCERPT = 200


@dataclass(frozen=True, slots=True)
class _Retry:
    """A failed attempt worth repeating: why, and the server's ``Retry-After`` wait."""

    reason: str
    retry_after: float | None = None


def excerpt(body: str) -> str:
    """The start of a response body, on one line."""
    flat = " ".join(body.split())
    return flat if len(flat) <= EXCERPT else flat[:EXCERPT] + "…"


def retry_after_seconds(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait; None when absent or not a number."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def completion(body: str) -> Generation | _Retry:
    """The generated text of a chat-completions response body, or what is wrong with it."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return _Retry(f"malformed JSON in the response: {excerpt(body)!r}")
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        return _Retry(f"no choices[0].message.content in the response: {excerpt(body)!r}")
    return Generation(content.strip(), None)


class OpenAICompatible:
    """A chat-completions endpoint (OpenAI, vLLM, llama.cpp server, …) at ``api_base``, e.g.
    ``http://localhost:8000/v1``, serving ``model``; see the module's retry rule.

    ``timeout`` is seconds per attempt. Generations carry no log-probability.
    """

    def __init__(
        self,
        api_base: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        max_wait: float = 30.0,
    ) -> None:
        if urlsplit(api_base).scheme not in ("http", "https") or not urlsplit(api_base).netloc:
            raise OdqaError(
                f"--api-base must be an http(s) URL such as http://host:8000/v1, got {api_base!r}"
            )
        if not model:
            raise OdqaError("the endpoint needs a model name (--api-model)")
        if timeout <= 0 or retries < 0 or backoff < 0 or max_wait < 0:
            raise OdqaError("timeout must be positive; retries, backoff and max_wait not negative")
        self.url = api_base.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        key = os.environ.get(api_key_env)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait

    def generate(
        self, messages: Sequence[Message], max_new_tokens: int, temperature: float
    ) -> Generation:
        """The endpoint's reply to ``messages`` (blocking; retried as the module says)."""
        payload = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_new_tokens,
            "temperature": temperature,
        }
        return asyncio.run(self._generate(payload))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        wait = self.backoff * 2 ** (attempt - 1) if retry_after is None else retry_after
        return min(wait, self.max_wait)

    async def _generate(self, payload: dict[str, Any]) -> Generation:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(headers=self.headers, timeout=timeout) as session:
            attempt = 0
            while True:
                attempt += 1
                outcome = await self._attempt(session, payload)
                if isinstance(outcome, Generation):
                    return outcome
                if attempt > self.retries:
                    raise OdqaError(
                        f"{self.url}: {outcome.reason} (gave up after {attempt} attempts)"
                    )
                await asyncio.sleep(self.delay(attempt, outcome.retry_after))

    async def _attempt(
        self, session: aiohttp.ClientSession, payload: dict[str, Any]
    ) -> Generation | _Retry:
        """One request: a generation, or a failure to retry; other failures raise."""
        try:
            async with session.post(self.url, json=payload) as response:
                body = (await response.read()).decode("utf-8", errors="replace")
                status, wait = response.status, response.headers.get("Retry-After")
        except TimeoutError:
            return _Retry(f"timed out after {self.timeout:g}s")
        except aiohttp.ClientError as error:
            return _Retry(f"connection error: {error or type(error).__name__}")
        if status == 429 or status >= 500:
            return _Retry(f"HTTP {status}: {excerpt(body)!r}", retry_after_seconds(wait))
        if not 200 <= status < 300:
            raise OdqaError(f"{self.url}: HTTP {status}: {excerpt(body)!r}{self._hint(status)}")
        return completion(body)

    def _hint(self, status: int) -> str:
        if status not in (401, 403):
            return ""
        if self.headers:
            return f"; check the API key in ${self.api_key_env}"
        return f"; no API key was sent: set ${self.api_key_env}"
