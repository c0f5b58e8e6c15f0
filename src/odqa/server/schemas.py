"""Request and response bodies. Requests are strict: unknown fields and wrong types are
refused (422, naming the field) rather than guessed at."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from odqa.corpus import Document
from odqa.read.answer import Answer, Evidence
from odqa.render import answer_dict, evidence_dict, hit_dict
from odqa.retrieve.hit import Hit


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Text = Annotated[str, AfterValidator(not_blank)]


class SearchRequest(Strict):
    query: Text = Field(description="The question or keywords.", examples=["what causes scurvy?"])
    k: int = Field(10, ge=1, description="How many documents (best passage each).")
    retriever: str | None = Field(
        None, description="bm25, dense, colbert, hybrid, …; default: the index's default."
    )


class AskRequest(Strict):
    question: Text = Field(description="The question.", examples=["what causes scurvy?"])
    top_k: int | None = Field(
        None, ge=1, description="Passages read (best per document); default: the server's."
    )
    retriever: str | None = Field(None, description="As for /search.")


class DocumentIn(Strict):
    id: str = Field(min_length=1)
    text: str
    title: str = ""

    def to_document(self) -> Document:
        return Document(self.id, self.text, self.title)


class AddDocumentsRequest(Strict):
    documents: list[DocumentIn] = Field(min_length=1)

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
    start: int | None = Field(description="Answer span in ``text`` (extractive readers).")
    end: int | None
    citation: int | None = Field(description="n of a generated answer's [n] citations.")

    @classmethod
    def of(cls, item: Evidence) -> EvidenceOut:
        return cls(**evidence_dict(item))


class AskResponse(BaseModel):
    question: str
    retriever: str
    answer: str = Field(description="Empty when kind is 'none'.")
    kind: str = Field(description="span, yesno, generated or none.")
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


class IndexInfo(BaseModel):
    path: str
    source: str
    documents: int
    passages: int
    retrievers: list[str]
    default_retriever: str
    created_with: str


class InfoResponse(BaseModel):
    version: str
    index: IndexInfo
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
