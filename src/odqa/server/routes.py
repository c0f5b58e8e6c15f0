"""The JSON endpoints: search, ask, health, info, and document updates."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from odqa._version import __version__
from odqa.errors import DuplicateIdError, InputError
from odqa.server.auth import require_write
from odqa.server.limits import Limits
from odqa.server.schemas import (
    AddDocumentsRequest,
    AskRequest,
    AskResponse,
    ErrorResponse,
    HealthResponse,
    HitOut,
    IndexInfo,
    InfoResponse,
    SearchRequest,
    SearchResponse,
    ServingInfo,
    UpdateResponse,
)
from odqa.server.service import IndexService

router = APIRouter()


def get_service(request: Request) -> IndexService:
    return request.app.state.service


def get_limits(request: Request) -> Limits:
    return request.app.state.limits


Service = Annotated[IndexService, Depends(get_service)]
RequestLimits = Annotated[Limits, Depends(get_limits)]


def refusals(*codes: int) -> dict[int | str, dict]:
    """OpenAPI entries for the error statuses an endpoint may answer with."""
    return {code: {"model": ErrorResponse} for code in (*codes, 422)}


@router.post("/search", responses=refusals(413))
async def search(body: SearchRequest, service: Service, limits: RequestLimits) -> SearchResponse:
    """The top ``k`` documents for a query, each with its best passage's text and offsets.
    Concurrent searches are encoded and searched together in batches."""
    limits.check(body.query, body.k, text_name="query", k_name="k")
    retriever = service.resolve(body.retriever)
    hits = await service.search(body.query, body.k, retriever, body.where)
    return SearchResponse(
        query=body.query, retriever=retriever, k=body.k, hits=[HitOut.of(hit) for hit in hits]
    )


@router.post("/ask", responses=refusals(409, 413))
async def ask(
    body: AskRequest, request: Request, service: Service, limits: RequestLimits
) -> AskResponse:
    """The reader's answer from the top passages, with its evidence and every passage read.
    409 when the server runs without a reader."""
    if service.reader is None:
        raise HTTPException(
            409,
            "no reader is configured, so /ask is off (/search works): start odqa serve with "
            "--reader-model DIR, or --reader generative with --api-base and --api-model",
        )
    k = body.top_k or request.app.state.k
    limits.check(body.question, k, text_name="question", k_name="top_k")
    retriever = service.resolve(body.retriever)
    answer, hits = await service.ask(body.question, k, retriever, body.where)
    return AskResponse.of(body.question, retriever, answer, hits)


@router.get("/health")
async def health() -> HealthResponse:
    """Whether the server is up."""
    return HealthResponse()


@router.get("/info")
async def info(request: Request, service: Service, limits: RequestLimits) -> InfoResponse:
    """The index (counts, retrievers), the reader, the write rule and the limits."""
    return InfoResponse(
        version=__version__,
        index=IndexInfo.of(service.path, service.searcher),
        serving=ServingInfo(**service.serving()),
        reader=None if service.reader is None else type(service.reader).__name__,
        top_k=request.app.state.k,
        writes=request.app.state.writes.mode,
        limits=asdict(limits),
    )


@router.post(
    "/documents", dependencies=[Depends(require_write)], responses=refusals(401, 403, 409, 413)
)
async def add(body: AddDocumentsRequest, service: Service) -> UpdateResponse:
    """Add documents to every retriever of the index; searches see them once this returns.
    409 when an id is already in the index (unless upsert: then it is replaced). Needs the
    write rule (see /info)."""
    try:
        documents = [document.to_document() for document in body.documents]
        report = await service.add(documents, upsert=body.upsert)
    except DuplicateIdError as exc:
        raise HTTPException(409, str(exc)) from exc
    return UpdateResponse(report=report, documents=service.searcher.manifest.counts["documents"])


@router.delete(
    "/documents/{doc_id:path}",
    dependencies=[Depends(require_write)],
    responses=refusals(401, 403, 404),
)
async def delete(doc_id: str, service: Service) -> UpdateResponse:
    """Delete a document (all its passages) from every retriever. 404 for an unknown id."""
    try:
        report = await service.delete([doc_id])
    except InputError as exc:
        raise HTTPException(404, str(exc)) from exc
    return UpdateResponse(report=report, documents=service.searcher.manifest.counts["documents"])
