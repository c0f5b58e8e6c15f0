"""``make_reader``: a reader chosen by kind and settings, as ``odqa ask`` and ``odqa serve`` do.

Settings that do not fit are refused before any model is loaded; the message names each
setting the way the caller's face does (Python's argument names here, flags in the CLI):

>>> try:
...     make_reader("extractive", "my-reader", api_base="http://localhost:8000/v1")
... except ReaderSettingsError as error:
...     print(error)
...     print(error.phrased({**PYTHON_NAMES, "api_base": "--api-base"}))
'api_base' is for the generative reader only
--api-base is for the generative reader only
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from odqa.errors import OdqaError

if TYPE_CHECKING:
    from odqa.read.answer import Reader

READERS = ("extractive", "sentence", "yesno", "generative")

PYTHON_NAMES = {
    "kind": "'kind'",
    "model": "'model'",
    "no_answer_threshold": "'no_answer_threshold'",
    "api_base": "'api_base'",
    "api_model": "'api_model'",
}
"""How :class:`ReaderSettingsError` names the settings: as :func:`make_reader`'s arguments."""


class ReaderSettingsError(OdqaError):
    """Reader settings that do not fit together (a reader without its model, say).

    The message names each setting through ``template``'s placeholders (``{model}``,
    ``{api_base}``, …), so that another face can name them its own way: the CLI says
    ``--reader-model`` where Python says ``'model'`` (see :meth:`phrased`).
    """

    def __init__(self, template: str, **values: object) -> None:
        self.template = template
        self.values = values
        super().__init__(self.phrased(PYTHON_NAMES))

    def phrased(self, names: Mapping[str, str]) -> str:
        """The message with each setting called by its name in ``names``."""
        return self.template.format(**names, **self.values)


def make_reader(
    kind: str = "extractive",
    model: str | Path | None = None,
    *,
    device: str | None = None,
    precision: str = "auto",
    no_answer_threshold: float | None = None,
    api_base: str | None = None,
    api_model: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
) -> Reader:
    """The reader of ``kind``: ``"extractive"`` (a fine-tuned question-answering ``model``
    folder), ``"sentence"`` (no training: the passage sentence most like the question under
    the encoder ``model``, the embedded all-MiniLM-L6-v2 by default), ``"yesno"`` (a yes/no
    ``model`` folder) or ``"generative"`` (a local causal LM ``model`` folder, or an
    OpenAI-compatible endpoint: ``api_base`` with ``api_model``, its key in the environment
    variable ``api_key_env``).

    odqa ships no trained reader model, so the extractive and yes/no readers need one; the
    sentence reader needs none. ``no_answer_threshold`` is for the extractive reader only.
    Settings that do not fit raise :class:`ReaderSettingsError`.
    """
    if kind not in READERS:
        raise ReaderSettingsError(
            "unknown reader {given!r}; available: {available}",
            given=kind,
            available=", ".join(READERS),
        )
    if no_answer_threshold is not None and kind != "extractive":
        raise ReaderSettingsError("{no_answer_threshold} applies to the extractive reader only")
    if kind == "generative":
        return make_generative_reader(
            model,
            device=device,
            precision=precision,
            api_base=api_base,
            api_model=api_model,
            api_key_env=api_key_env,
        )
    if api_base is not None:
        raise ReaderSettingsError("{api_base} is for the generative reader only")
    if kind == "sentence":
        from odqa.read.sentence import SentenceReader

        return SentenceReader(model, device=device, precision=precision)
    if kind == "yesno":
        if model is None:
            raise ReaderSettingsError(
                "{model} is required: the yes/no reader needs a trained yes/no model folder "
                "and odqa ships none (odqa train yesno)"
            )
        from odqa.read.yesno import YesNoReader

        return YesNoReader(model, device=device, precision=precision)
    if model is None:
        raise ReaderSettingsError(
            "{model} is required: the extractive reader needs a fine-tuned question-answering "
            "model folder and odqa ships none; train one with "
            "'odqa train reader SQUAD_JSON --out DIR' (or use the untrained sentence reader)"
        )
    from odqa.read.extractive import ExtractiveReader

    return ExtractiveReader(
        model, device=device, precision=precision, no_answer_threshold=no_answer_threshold
    )


def make_generative_reader(
    model: str | Path | None = None,
    *,
    device: str | None = None,
    precision: str = "auto",
    api_base: str | None = None,
    api_model: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
) -> Reader:
    """A generative reader on a local causal LM folder (``model``) or on an
    OpenAI-compatible endpoint (``api_base`` serving ``api_model``): exactly one of them."""
    if (model is None) == (api_base is None):
        raise ReaderSettingsError(
            "the generative reader needs exactly one of {model} (a local causal language "
            "model folder) or {api_base} with {api_model} (an OpenAI-compatible endpoint)"
        )
    from odqa.read.generative import GenerativeReader, LocalCausalLM, OpenAICompatible

    if model is not None:
        return GenerativeReader(LocalCausalLM(model, device=device, precision=precision))
    if not api_model:
        raise ReaderSettingsError("{api_base} needs {api_model}: the model the endpoint serves")
    return GenerativeReader(OpenAICompatible(api_base, api_model, api_key_env))
