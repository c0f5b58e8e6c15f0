"""A local aiohttp server for the web-fetch tests: fixed pages, misbehaving routes, counters.

It runs on 127.0.0.1 (a free port) in a thread of its own, counts requests per path, records
when each came, and tracks the most requests it served at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

SLOW_SECONDS = 1.0
BUSY_SECONDS = 0.15

ARTICLE = """<!DOCTYPE html>
<html lang="en"><head>
  <meta charset="utf-8">
  <title>Vitamin C and scurvy</title>
  <style>body { font-family: serif; }</style>
  <script>window.analytics = "TRACKING-SCRIPT";</script>
</head><body>
  <header class="site-header"><a href="/">Health Wiki</a> <a href="/login">Log in</a></header>
  <nav><ul><li><a href="/a">NAV-LINK Home</a></li><li><a href="/b">Topics</a></li></ul></nav>
  <main>
    <article>
      <header><h1>Vitamin C and scurvy</h1></header>
      <p>Scurvy is caused by a lack of <b>vitamin C</b> in the diet.</p>
      <h2>Symptoms</h2>
      <ul><li>Bleeding gums</li><li>Poor wound healing</li></ul>
      <script>document.write("INLINE-SCRIPT");</script>
      <div class="tags"><a href="/t/1">vitamins</a> <a href="/t/2">nutrition</a></div>
      <p>Citrus fruit prevents it.</p>
    </article>
  </main>
  <aside>ASIDE-TEXT Related: <a href="/r">Rickets</a></aside>
  <footer>FOOTER-TEXT Copyright 2024</footer>
</body></html>
"""

MALFORMED = (
    "<html><body><p>Unclosed paragraph <b>bold <i>nested</b> text & more"
    "<div><p>Second block<td>stray cell</body><p>after body"
)

NO_TEXT = "<html><head><script>var only = 1;</script></head><body><nav>menu</nav></body></html>"

PLAIN = "Line one of a plain text file.\nLine two.\n"

# Shaped after a real PubMed abstract page: the title twice (full and short view), authors,
# affiliations, identifiers, a structured abstract, keywords outside the abstract, a sidebar.
PUBMED = """<!DOCTYPE html>
<html lang="en"><head>
  <meta charset="UTF-8">
  <title>Dietary vitamin C and scurvy in adults - PubMed</title>
  <meta name="ncbi_app" content="pubmed" />
  <meta name="ncbi_db" content="pubmed" />
  <meta name="ncbi_pdid" content="abstract" />
  <meta name="uid" content="31452104" />
  <meta name="citation_title" content="Dietary vitamin C and scurvy in adults">
  <meta name="citation_pmid" content="31452104">
</head><body>
<header class="ncbi-header" role="banner">
  <div class="nlm">National Library of Medicine</div></header>
<form action="/" method="get" class="search-form" role="search">
  <input type="search" name="term" placeholder="Search PubMed"><button>Search</button>
</form>
<div class="article-page" id="article-page" data-article-pmid="31452104">
  <aside class="page-sidebar"><div class="full-text-links"><h3 class="title">Full text links</h3>
    <a class="link-item" href="https://example.org/full">Free PMC article</a></div></aside>
  <main class="article-details" id="article-details">
    <header class="heading" id="heading">
      <div class="full-view" id="full-view-heading">
        <div class="article-citation"><div class="article-source">
          <button class="journal-actions-trigger">J Nutr Sci</button>
          <span class="cit">2019 Aug;8(2):101-109.</span></div></div>
        <h1 class="heading-title">
            Dietary vitamin C and   scurvy in adults
        </h1>
        <div class="inline-authors"><div class="authors"><div class="authors-list">
          <span class="authors-list-item"><a class="full-name" href="/?term=Doe+J">AUTHOR-NAME</a>
          <sup class="affiliation-links"><a class="affiliation-link" href="#a1">1</a></sup></span>
        </div></div></div>
        <div class="extended-article-details" id="expanded-authors"><div class="affiliations">
          <h3 class="title">Affiliation</h3>
          <ul class="item-list"><li>AFFILIATION-TEXT University Hospital.</li></ul></div></div>
        <ul class="identifiers" id="full-view-identifiers"><li><span class="identifier pubmed">
          <span class="id-label">PMID:</span>
          <strong class="current-id" title="PubMed ID">31452104</strong></span></li></ul>
      </div>
      <div class="short-view" id="short-view-heading">
        <h1 class="heading-title">Dietary vitamin C and scurvy in adults</h1>
      </div>
    </header>
    <div class="abstract" id="abstract">
      <h2 class="title">Abstract</h2>
      <div class="abstract-content selected" id="eng-abstract">
        <p><strong class="sub-title">Background: </strong>
          Scurvy persists in adults with poor diets.</p>
        <p><strong class="sub-title">Results: </strong>
          Supplementation with vitamin C resolved symptoms within weeks.</p>
      </div>
      <p><strong class="sub-title">Keywords: </strong>KEYWORDS-TEXT ascorbic acid.</p>
    </div>
    <div class="similar-articles" id="similar"><h2 class="title">Similar articles</h2>
      <ul class="articles-list"><li class="full-docsum"><a class="docsum-title" href="/1/">
        SIMILAR-ARTICLE about rickets</a></li></ul></div>
  </main>
</div>
<footer class="ncbi-footer">FOOTER-TEXT Follow NCBI</footer>
</body></html>
"""

Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


def html(text: str, status: int = 200, **headers: str) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=headers)


async def _slow(request: web.Request, count: int) -> web.Response:
    await asyncio.sleep(SLOW_SECONDS)
    return html("<p>too late</p>")


async def _flaky(request: web.Request, count: int) -> web.Response:
    return html("<p>down</p>", 503) if count == 1 else html("<p>Back up again.</p>")


async def _limited(request: web.Request, count: int) -> web.Response:
    if count == 1:
        return html("<p>slow down</p>", 429, **{"Retry-After": "1"})
    return html("<p>Served after waiting.</p>")


async def _missing(request: web.Request, count: int) -> web.Response:
    return html("<p>not here</p>", 404)


async def _busy(request: web.Request, count: int) -> web.Response:
    await asyncio.sleep(BUSY_SECONDS)
    return html(f"<p>Busy page {request.path}.</p>")


ROUTES: dict[str, Handler] = {
    "/slow": _slow,
    "/flaky": _flaky,
    "/limited": _limited,
    "/missing": _missing,
}


FIXED = {
    "/article": (ARTICLE, "text/html"),
    "/broken": (MALFORMED, "text/html"),
    "/empty": (NO_TEXT, "text/html"),
    "/plain.txt": (PLAIN, "text/plain"),
    "/pubmed/31452104/": (PUBMED, "text/html"),
    "/report.pdf": ("%PDF-1.4", "application/pdf"),
}


class WebServer:
    """The test server; ``hits`` counts requests per path, ``seen`` keeps their times."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.seen: defaultdict[str, list[float]] = defaultdict(list)
        self.active = 0
        self.max_active = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        self.seen[path].append(time.monotonic())
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if path in FIXED:
                text, content_type = FIXED[path]
                return web.Response(text=text, content_type=content_type)
            if path.startswith("/busy/"):
                return await _busy(request, self.hits[path])
            handler = ROUTES.get(path)
            if handler is None:
                return html("<p>no such page</p>", 404)
            return await handler(request, self.hits[path])
        finally:
            self.active -= 1

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
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


@contextmanager
def serve() -> Iterator[WebServer]:
    """A started server, stopped on exit."""
    server = WebServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
