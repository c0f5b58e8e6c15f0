"""Response bodies to a title and main text: HTML (via selectolax), PubMed pages, plain text.

HTML keeps what a reader would read: the page title, then the text of ``<main>`` (or
``<article>``, or the body) one block per line — headings, paragraphs, list items, cells —
after dropping scripts, styles, navigation, page headers and footers, asides, forms, hidden
elements and link-dense blocks (menus, tag clouds). Plain text passes through unchanged except
for line endings and surrounding blank space.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

from odqa.corpus.web import pubmed

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown"})

NOISE = (
    "script, style, noscript, template, svg, canvas, iframe, object, embed, nav, aside, footer,"
    " form, button, select, dialog, [hidden], [aria-hidden=true], [role=navigation],"
    " [role=banner], [role=contentinfo], [role=complementary], [role=search]"
)
ROOTS = ("main, [role=main]", "article", "body")
LINK_BLOCKS = "div, section, ul, ol, table"
LINK_DENSITY = 0.6
BLOCKS = (
    "address, article, blockquote, br, caption, dd, div, dl, dt, figcaption, figure, h1, h2, h3,"
    " h4, h5, h6, header, hr, li, main, ol, p, pre, section, table, td, th, tr, ul"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True)
class Extracted:
    """A page's title and main text (both possibly empty)."""

    title: str
    text: str


def media_type(content_type: str) -> str:
    """``text/html`` from ``text/html; charset=utf-8``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_supported(content_type: str) -> bool:
    """True for HTML, plain text and a missing type (then sniffed from the body)."""
    kind = media_type(content_type)
    return kind in HTML_TYPES or kind in TEXT_TYPES or not kind


def squash(text: str) -> str:
    """One line: runs of white space (including newlines) made one space, ends trimmed."""
    return " ".join(_CONTROL.sub("", text).split())


def tidy_lines(text: str) -> str:
    """Every line squashed, empty lines dropped."""
    return "\n".join(line for line in map(squash, text.splitlines()) if line)


def _charset(body: bytes, content_type: str, html: bool) -> str:
    """The body's encoding: byte-order mark, then header, then ``<meta charset>``, then UTF-8."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    declared = re.search(r"charset\s*=\s*[\"']?([^\"';\s]+)", content_type, re.IGNORECASE)
    sniffed = _META_CHARSET.search(body[:4096]) if html and declared is None else None
    for match in (declared, sniffed):
        if match is None:
            continue
        name = match.group(1)
        name = name.decode("ascii") if isinstance(name, bytes) else name
        try:
            return codecs.lookup(name).name
        except LookupError:
            continue
    return "utf-8"


def decode(body: bytes, content_type: str, html: bool) -> str:
    """The body as text; undecodable bytes become U+FFFD."""
    return body.decode(_charset(body, content_type, html), errors="replace")


def extract(body: bytes, content_type: str, url: str) -> Extracted:
    """The title and main text of a response body of the given ``Content-Type``."""
    kind = media_type(content_type)
    html = kind in HTML_TYPES or (not kind and body.lstrip()[:1] == b"<")
    text = decode(body, content_type, html)
    if not html:
        plain = "\n".join(_CONTROL.sub("", text.removeprefix("\ufeff")).splitlines())
        return Extracted("", plain.strip())
    tree = LexborHTMLParser(text)
    if pubmed.is_article(url, tree):
        title, paragraphs = pubmed.article_parts(tree)
        return Extracted(squash(title), "\n".join(filter(None, map(squash, paragraphs))))
    return Extracted(_title(tree), main_text(tree))


def _title(tree: LexborHTMLParser) -> str:
    for selector in ("title", "h1"):
        node = tree.css_first(selector)
        if node is not None and (title := squash(node.text())):
            return title
    return ""


def _outermost(nodes: list[LexborNode]) -> list[LexborNode]:
    """``nodes`` without those inside another of them (removing one removes its descendants)."""
    chosen: set[int] = set()
    kept = []
    for node in nodes:  # document order: an ancestor comes before its descendants
        parent = node.parent
        while parent is not None and parent.mem_id not in chosen:
            parent = parent.parent
        if parent is None:
            chosen.add(node.mem_id)
            kept.append(node)
    return kept


def _inside(node: LexborNode, tags: tuple[str, ...]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def _link_dense(node: LexborNode) -> bool:
    total = len("".join(node.text().split()))
    links = sum(len("".join(link.text().split())) for link in node.css("a"))
    return total > 0 and links > LINK_DENSITY * total


def main_text(tree: LexborHTMLParser) -> str:
    """The readable text of an HTML page, one block per line (the tree is modified)."""
    for node in _outermost(tree.css(NOISE)):
        node.decompose()
    for node in _outermost(tree.css("header")):
        if not _inside(node, ("main", "article")):
            node.decompose()
    for selector in ROOTS:
        root = tree.css_first(selector)
        if root is None:
            continue
        dense = [
            node
            for node in root.css(LINK_BLOCKS)
            if node.mem_id != root.mem_id and _link_dense(node)
        ]
        for node in _outermost(dense):
            node.decompose()
        for node in root.css(BLOCKS):
            node.insert_before("\n")
            node.insert_after("\n")
        text = tidy_lines(root.text())
        if text:
            return text
    return ""
