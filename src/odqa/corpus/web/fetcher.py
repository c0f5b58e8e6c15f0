"""Polite asynchronous HTTP fetching: global and per-host limits, timeouts, retries with backoff.

Retried: HTTP 429 and 5xx, timeouts and connection errors, with exponential backoff and full
jitter (``base * 2**(n-1)``, capped, times a random factor from a seedable generator); a
``Retry-After`` header (seconds or an HTTP date, capped) replaces the backoff. Other 4xx (and
3xx left after following redirects), and bodies odqa cannot read (unsupported type, too large),
fail at once.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import urlsplit

import aiohttp

from odqa._version import __version__
from odqa.corpus.web.extract import is_supported, media_type
from odqa.errors import InputError

ACCEPT = "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1"


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """How to fetch: limits, timeout (seconds per request), retries and backoff (seconds)."""

    concurrency: int = 16
    per_host: int = 2
    timeout: float = 20.0
    retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    max_bytes: int = 20 * 2**20
    seed: int | None = None
    user_agent: str = f"odqa/{__version__}"

    def __post_init__(self) -> None:
        for name in ("concurrency", "per_host", "max_bytes"):
            if getattr(self, name) < 1:
                raise InputError("must be at least 1", field=name)
        if self.timeout <= 0:
            raise InputError("must be positive", field="timeout")
        for name in ("retries", "backoff_base", "backoff_max", "retry_after_max"):
            if getattr(self, name) < 0:
                raise InputError("must not be negative", field=name)


@dataclass(frozen=True, slots=True)
class Page:
    """A successful response: the raw body, its ``Content-Type`` header and when it came."""

    url: str
    status: int
    content_type: str
    fetched_at: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _Retry:
    """A transient failure: its reason and the server's ``Retry-After`` wait, if any."""

    reason: str
    retry_after: float | None = None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _http_reason(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


class Backoff:
    """Waits between attempts: exponential with full jitter, or what ``Retry-After`` asks."""

    def __init__(self, options: FetchOptions) -> None:
        self.options = options
        self._random = random.Random(options.seed)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.options.retry_after_max)
        ceiling = min(self.options.backoff_max, self.options.backoff_base * 2 ** (attempt - 1))
        return ceiling * self._random.random()


class Fetcher:
    """Fetches URLs through one aiohttp session under the limits and retry policy of ``options``."""

    def __init__(self, session: aiohttp.ClientSession, options: FetchOptions) -> None:
        self.session = session
        self.options = options
        self.backoff = Backoff(options)
        self._all = asyncio.Semaphore(options.concurrency)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(options.per_host)
        )

    async def fetch(self, url: str) -> tuple[Page | str, int]:
        """The page at ``url`` or why not, and the attempts made; transient failures retry."""
        host = (urlsplit(url).netloc or url).lower()
        attempt = 0
        while True:
            attempt += 1
            async with self._all, self._hosts[host]:
                outcome = await self._attempt(url)
            if not isinstance(outcome, _Retry):
                return outcome, attempt
            if attempt > self.options.retries:
                plural = "" if attempt == 1 else "s"
                return f"{outcome.reason} ({attempt} attempt{plural})", attempt
            await asyncio.sleep(self.backoff.delay(attempt, outcome.retry_after))

    async def _attempt(self, url: str) -> Page | _Retry | str:
        """One request: a page, a transient failure to retry, or a final failure's reason."""
        timeout = aiohttp.ClientTimeout(total=self.options.timeout)
        try:
            async with self.session.get(url, timeout=timeout) as response:
                return await self._read(url, response)
        except asyncio.TimeoutError:
            return _Retry(f"timed out after {self.options.timeout:g}s")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as error:
            return _Retry(f"connection error: {error or type(error).__name__}")
        except aiohttp.TooManyRedirects:
            return "too many redirects"
        except (aiohttp.InvalidURL, UnicodeError):
            return "invalid URL"
        except aiohttp.ClientError as error:
            return f"request failed: {error or type(error).__name__}"

    async def _read(self, url: str, response: aiohttp.ClientResponse) -> Page | _Retry | str:
        status = response.status
        if status == 429 or status >= 500:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            return _Retry(_http_reason(status), wait)
        if status >= 300:
            return _http_reason(status)
        content_type = response.headers.get("Content-Type", "")
        if not is_supported(content_type):
            return f"unsupported content type: {media_type(content_type)}"
        body = bytearray()
        async for chunk in response.content.iter_chunked(2**16):
            body += chunk
            if len(body) > self.options.max_bytes:
                return f"body larger than {self.options.max_bytes} bytes"
        fetched_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return Page(url, status, content_type, fetched_at, bytes(body))


def open_session(options: FetchOptions) -> aiohttp.ClientSession:
    """An aiohttp session whose connection pool matches the fetcher's limits."""
    connector = aiohttp.TCPConnector(limit=options.concurrency, limit_per_host=options.per_host)
    headers = {"User-Agent": options.user_agent, "Accept": ACCEPT}
    return aiohttp.ClientSession(connector=connector, headers=headers)
