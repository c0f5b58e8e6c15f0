"""Request and response bodies. Requests are strict: unknown fields and wrong types are
refused (422, naming the field) rather than guessed at."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from odqa.corpus import Document
from odqa.corpus.schema import id_problem, shown
from odqa.corpus.textio import check_json
from odqa.errors import InputError
from odqa.index.filters import parse_where
from odqa.read.answer import Answer, Evidence
from odqa.render import answer_dict, evidence_dict, hit_dict
from odqa.retrieve.hit import Hit
from odqa.retrieve.searcher import Searcher


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def encodable(value: str) -> str:
    """``value`` if it can be written as UTF-8: JSON's ``\\ud800`` escapes can carry a lone
    surrogate, which no response, tokenizer or file could hold further on."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError(
            "string_unicode",
            "not valid Unicode: a lone surrogate {character} at character {position}",
            {"character": f"\\u{ord(value[exc.start]):04x}", "position": exc.start},
        ) from None
    return value


def not_empty(value: str) -> str:
    if not value:
        raise PydanticCustomError("string_too_short", "must not be empty")
    return value


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Str = Annotated[str, AfterValidator(encodable)]
"""Every string a request carries: valid Unicode (422 naming the field otherwise). Checks on
its content come after, as validators: a length constraint (``min_length``) would have
pydantic read it first, and refuse a surrogate less clearly."""

Text = Annotated[Str, AfterValidator(not_blank)]


def refusal(kind: str, error: InputError, within: str | None = None) -> PydanticCustomError:
    """``error`` as a validation error; the field it names, less the ``within`` prefix, goes
    in ``at`` (a path below the one pydantic names, see :func:`handlers.describe`)."""
    at = error.field or ""
    if within is not None:
        at = at.removeprefix(within).removeprefix(".")
    return PydanticCustomError(kind, "{message}", {"message": error.message, "at": at})


def well_formed_where(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """``value`` if it reads as a filter (:func:`odqa.index.filters.parse_where`)."""
    try:
        parse_where(value)
    except InputError as exc:
        raise refusal("where", exc, within="where") from None
    return value


def unicode_values(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` if every key and string in it, however deep, can be written as UTF-8."""
    try:
        check_json(value)
    except InputError as exc:
        raise refusal("string_unicode", exc) from None
    return value


def usable_id(value: str) -> str:
    """``value`` if it can be a document id (the readers' rule: no whitespace)."""
    problem = id_problem(value)
    if problem is not None:
        raise PydanticCustomError(
            "document_id",
            "id {id} {problem}; ids hold no whitespace",
            {"id": shown(value), "problem": problem},
        )
    return value


Where = Annotated[dict[str, Any] | None, AfterValidator(well_formed_where)]
WHERE = Field(
    None,
    description="Keep only documents whose metadata match, before ranking: a scalar is "
    "equality, a list is one of, an object of gte/gt/lte/lt numbers is a range; all must hold.",
    examples=[{"year": {"gte": 2018}, "source": ["pubmed", "pmc"]}],
)


class SearchRequest(Strict):
    query: Text = Field(description="The question or keywords.", examples=["what causes scurvy?"])
    k: int = Field(10, ge=1, description="How many documents (best passage each).")
    retriever: Str | None = Field(
        None, description="bm25, dense, colbert, hybrid, …; default: the index's default."
    )
    where: Where = WHERE


class AskRequest(Strict):
    question: Text = Field(description="The question.", examples=["what causes scurvy?"])
    top_k: int | None = Field(
        None, ge=1, description="Passages read (best per document); default: the server's."
    )
    retriever: Str | None = Field(None, description="As for /search.")
    where: Where = Field(None, description="As for /search.")


class DocumentIn(Strict):
    id: Annotated[Str, AfterValidator(not_empty), AfterValidator(usable_id)] = Field(
        json_schema_extra={"minLength": 1}, description="Non-empty, without whitespace."
    )
    text: Str
    title: Str = ""
    metadata: Annotated[dict[str, Any], AfterValidator(unicode_values)] = Field(
        default_factory=dict, description="Kept with the document; what filters match."
    )

    def to_document(self) -> Document:
        return Document(self.id, self.text, self.title, self.metadata)


class AddDocumentsRequest(Strict):
    documents: list[DocumentIn] = Field(min_length=1)
    upsert: bool = Field(
        False, description="Replace documents whose ids the index holds already (else 409)."
    )

    @model_validator(mode="after")
    def _distinct_ids(self) -> AddDocumentsRequest:
        seen: set[str] = set()
        for document in self.documents:
            if document.id in seen:
                raise ValueError(f"document id {document.id!r} appears twice")
            seen.add(document.id)
        return self


class HitOut(BaseModel):
    """A hit as :func:`odqa.render.hit_dict` gives it (a score that is not finite is null)."""

    rank: int
    score: float | None
    doc_id: str
    passage_id: str
    title: str
    text: str
    start: int = Field(description="Character offset of the passage in its document's text.")
    end: int

    @classmethod
    def of(cls, hit: Hit) -> HitOut:
        return cls(**hit_dict(hit))


class SearchResponse(BaseModel):
    query: str
    retriever: str
    k: int
    hits: list[HitOut]


class EvidenceOut(BaseModel):
    """Evidence as :func:`odqa.render.evidence_dict` gives it."""

    doc_id: str
    passage_id: str
    title: str
    text: str
    retrieval_score: float | None
    start: int | None = Field(
        description="Answer span in ``text`` (extractive and sentence readers)."
    )
    end: int | None
    citation: int | None = Field(description="n of a generated answer's [n] citations.")

    @classmethod
    def of(cls, item: Evidence) -> EvidenceOut:
        return cls(**evidence_dict(item))


class AskResponse(BaseModel):
    question: str
    retriever: str
    answer: str = Field(description="Empty when kind is 'none'.")
    kind: str = Field(description="span, sentence, yesno, generated or none.")
    score: float | None
    evidence: list[EvidenceOut] = Field(description="What the answer rests on, best first.")
    passages: list[HitOut] = Field(description="Every passage read: the answer's sources.")

    @classmethod
    def of(cls, question: str, retriever: str, answer: Answer, hits: list[Hit]) -> AskResponse:
        record = answer_dict(answer)
        return cls(
            question=question,
            retriever=retriever,
            answer=record["text"],
            kind=record["kind"],
            score=record["score"],
            evidence=[EvidenceOut(**item) for item in record["evidence"]],
            passages=[HitOut.of(hit) for hit in hits],
        )


def public_name(value: str) -> str:
    """A file or folder named by its absolute path (a corpus, a local model) as its name
    alone, so that the service does not show where things sit on the server; anything else
    (a relative name, a model id such as ``sentence-transformers/all-MiniLM-L6-v2``) as is."""
    if value.startswith("~") or PurePosixPath(value).is_absolute():
        return PurePosixPath(value).name
    if PureWindowsPath(value).is_absolute():
        return PureWindowsPath(value).name
    return value


def without_paths(value: Any) -> Any:
    """``value`` (manifest settings: dicts, lists, scalars) with every string through
    :func:`public_name`."""
    if isinstance(value, str):
        return public_name(value)
    if isinstance(value, Mapping):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_paths(item) for item in value]
    return value


class IndexInfo(BaseModel):
    """The index as its manifest describes it, with no absolute path of the server's."""

    name: str = Field(description="The index folder's name.")
    source: str = Field(description="The corpus it was built from (file name).")
    documents: int
    passages: int
    counts: dict[str, int]
    retrievers: list[str] = Field(description="What a request may name, fused ones included.")
    default_retriever: str
    settings: dict[str, dict[str, Any]] = Field(
        description="Each stored retriever's settings (models by folder name)."
    )
    chunking: dict[str, Any]
    format_version: int
    created_with: str
    created_at: str

    @classmethod
    def of(cls, path: Path, searcher: Searcher) -> IndexInfo:
        manifest = searcher.manifest
        return cls(
            name=path.name,
            source=public_name(manifest.source),
            documents=manifest.counts["documents"],
            passages=manifest.counts["passages"],
            counts=manifest.counts,
            retrievers=searcher.available,
            default_retriever=searcher.default_retriever,
            settings=without_paths(manifest.retrievers),
            chunking=without_paths(manifest.chunking),
            format_version=manifest.format_version,
            created_with=manifest.created_with,
            created_at=manifest.created_at,
        )


class ServingInfo(BaseModel):
    """Which index the service serves: another put at its path (a rebuild, an update by
    another process) is taken up whole at the next search once it opens."""

    opened_at: str = Field(description="When the served index was opened (UTC, ISO 8601).")
    reopened: int = Field(description="Replacements on disk taken up since the start.")


class InfoResponse(BaseModel):
    version: str
    index: IndexInfo
    serving: ServingInfo
    reader: str | None = Field(description="The reader's class, or null: /ask is off.")
    top_k: int = Field(description="Passages /ask reads when the request does not say.")
    writes: str = Field(description="api-key (X-API-Key required), open, or disabled.")
    limits: dict[str, int]


class HealthResponse(BaseModel):
    status: str = "ok"


class UpdateResponse(BaseModel):
    report: dict[str, int | bool] = Field(description="What changed, as odqa's updates count.")
    documents: int = Field(description="Live documents in the index now.")


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong, in one line.")
    errors: list[dict] | None = Field(None, description="Per field, for validation errors.")
