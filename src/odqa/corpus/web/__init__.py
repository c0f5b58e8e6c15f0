"""Building a corpus from the web: a URL list in, a JSONL corpus and a per-URL report out.

``fetch_corpus("urls.txt", "corpus.jsonl")`` fetches every URL politely (global and per-host
limits, timeouts, retries with backoff), caches bodies on disk, reduces each page to its title
and main text (PubMed pages to title and abstract) and appends one document per page; a re-run
resumes where an interrupted one stopped. The library never prints: follow progress with the
``on_start`` and ``on_result`` callbacks.
"""

from odqa.corpus.web.fetcher import FetchOptions
from odqa.corpus.web.output import UrlResult
from odqa.corpus.web.run import FetchSummary, fetch_corpus, fetch_corpus_async

__all__ = ["FetchOptions", "FetchSummary", "UrlResult", "fetch_corpus", "fetch_corpus_async"]
