"""PubMed abstract pages (``https://pubmed.ncbi.nlm.nih.gov/<pmid>/``): the title and abstract.

On these pages the title is ``h1.heading-title`` (given twice, for the full and the short view)
and the abstract is ``div.abstract-content.selected`` (``#eng-abstract``; other languages sit in
sibling ``div.abstract-content`` blocks), one ``<p>`` per section, a structured abstract's
section name in ``strong.sub-title``. Keywords, authors, affiliations, citations and similar
articles sit outside these and are left out.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

HOST = "pubmed.ncbi.nlm.nih.gov"
_ARTICLE_PATH = re.compile(r"/\d+/?")


def _meta(tree: LexborHTMLParser, name: str) -> str:
    node = tree.css_first(f'meta[name="{name}"]')
    return (node.attributes.get("content") or "").strip() if node is not None else ""


def is_article(url: str, tree: LexborHTMLParser) -> bool:
    """True for a PubMed abstract page: by its address, or by the page's own ncbi meta tags."""
    parts = urlsplit(url)
    if parts.hostname == HOST and _ARTICLE_PATH.fullmatch(parts.path):
        return True
    return _meta(tree, "ncbi_app") == "pubmed" and _meta(tree, "ncbi_pdid") == "abstract"


def article_parts(tree: LexborHTMLParser) -> tuple[str, list[str]]:
    """The raw title and the abstract's paragraphs (empty when the article has no abstract)."""
    heading = tree.css_first("h1.heading-title")
    title = heading.text() if heading is not None else _meta(tree, "citation_title")
    abstract = tree.css_first("div.abstract-content.selected") or tree.css_first(
        "div.abstract-content"
    )
    if abstract is None:
        return title, []
    paragraphs = [node.text() for node in abstract.css("p")]
    return title, paragraphs or [abstract.text()]
