"""Text generation for the generative reader: the backend protocol and a local causal LM.

A backend turns chat messages into a :class:`Generation`. :class:`LocalCausalLM` runs a local
transformers causal-LM folder; :class:`odqa.read.openai_api.OpenAICompatible` calls an HTTP
endpoint.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from jinja2 import TemplateError
from transformers import AutoModelForCausalLM, AutoTokenizer

from odqa.errors import OdqaError
from odqa.models.checkpoint import LOAD_ERRORS, load_failure
from odqa.models.device import pick_device, use_bf16
from odqa.read.extractive import quiet_transformers
from odqa.read.prompt import Message


@dataclass(frozen=True, slots=True)
class Generation:
    """Generated text and its mean token log-probability (None when the backend gives none)."""

    text: str
    logprob: float | None = None


class Backend(Protocol):
    """Anything that continues a chat: a local model, an HTTP endpoint, a test double."""

    def generate(
        self, messages: Sequence[Message], max_new_tokens: int, temperature: float
    ) -> Generation: ...


def plain_prompt(messages: Sequence[Message]) -> str:
    """``System: …``, ``User: …`` blocks and a trailing ``Assistant:``, for models without a
    chat template."""
    turns = [f"{message['role'].capitalize()}: {message['content']}" for message in messages]
    return "\n\n".join([*turns, "Assistant:"])


class LocalCausalLM:
    """A transformers causal language model from a local folder (weights and tokenizer).

    The tokenizer's chat template renders the messages when it has one (a template that
    refuses a system message gets it folded into the first user message), else
    :func:`plain_prompt`. ``temperature`` 0 decodes greedily. A prompt that leaves fewer than
    ``max_new_tokens`` of the model's context is cut from the end of its last user message —
    the passages' side of :func:`odqa.read.prompt.build_prompt` — with a warning.
    ``precision`` ``auto`` loads bf16 weights on GPUs and bf16-capable CPUs, fp32 elsewhere.
    """

    def __init__(
        self, model_path: str | Path, device: str | None = None, precision: str = "auto"
    ) -> None:
        folder = Path(model_path).expanduser()
        if not (folder / "config.json").is_file():
            raise OdqaError(
                f"{model_path}: not a model folder (no config.json); the generative reader "
                "loads a local transformers causal language model folder"
            )
        self.device = pick_device(device)
        dtype = torch.bfloat16 if use_bf16(self.device, precision) else torch.float32
        try:
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
                model, info = AutoModelForCausalLM.from_pretrained(
                    str(folder), dtype=dtype, output_loading_info=True
                )
        except LOAD_ERRORS as exc:
            raise load_failure(folder, "a causal language model", exc) from exc
        if info["missing_keys"]:
            raise OdqaError(
                f"{folder}: not a trained causal language model ({len(info['missing_keys'])} "
                f"weights missing, e.g. {min(info['missing_keys'])}); is it an encoder or an "
                "extractive reader?"
            )
        self.model = model.to(self.device).eval()
        self.name = folder.name
        self.context = getattr(self.model.config, "max_position_embeddings", None)
        pad = self.tokenizer.pad_token_id
        self.pad_id = self.tokenizer.eos_token_id if pad is None else pad

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text of ``messages``, ready for the assistant's turn."""
        if not getattr(self.tokenizer, "chat_template", None):
            return plain_prompt(messages)
        try:
            return self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, tokenize=False
            )
        except TemplateError:
            if messages[0]["role"] != "system" or len(messages) < 2:
                raise
            system, first, *rest = messages
            folded = {**first, "content": f"{system['content']}\n\n{first['content']}"}
            return self.tokenizer.apply_chat_template(
                [folded, *rest], add_generation_prompt=True, tokenize=False
            )

    def encode(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the rendered prompt (a chat template brings its own special tokens)."""
        chat = bool(getattr(self.tokenizer, "chat_template", None))
        ids = self.tokenizer(self.render(messages), add_special_tokens=not chat, verbose=False)
        return ids["input_ids"]

    def fit(self, messages: Sequence[Message], max_new_tokens: int) -> list[int]:
        """Token ids of the prompt, its last user message cut until ``max_new_tokens`` fit."""
        ids = self.encode(messages)
        if self.context is None or len(ids) + max_new_tokens <= self.context:
            return ids
        room = self.context - max_new_tokens
        asked = len(ids)
        messages = list(messages)
        last = max(i for i, message in enumerate(messages) if message["role"] == "user")
        user = self.tokenizer(messages[last]["content"], add_special_tokens=False, verbose=False)
        content = user["input_ids"]
        while len(ids) > room:
            keep = len(content) - (len(ids) - room)
            if keep <= 0:
                raise OdqaError(
                    f"{self.name} takes {self.context} tokens: no room for the question and "
                    f"{max_new_tokens} new tokens; lower max_new_tokens"
                )
            content = content[:keep]
            text = self.tokenizer.decode(content, skip_special_tokens=True)
            messages[last] = {**messages[last], "content": text}
            ids = self.encode(messages)
        warnings.warn(
            f"the prompt has {asked} tokens but {self.name} takes {self.context} with "
            f"{max_new_tokens} new tokens; the passages were cut to {len(ids)} prompt tokens "
            "(read fewer passages to avoid this)",
            stacklevel=3,
        )
        return ids

    @torch.inference_mode()
    def generate(
        self, messages: Sequence[Message], max_new_tokens: int, temperature: float
    ) -> Generation:
        """The model's continuation of ``messages``, with its mean token log-probability."""
        ids = torch.tensor([self.fit(messages, max_new_tokens)], device=self.device)
        if temperature > 0:
            decoding = {"do_sample": True, "temperature": temperature}
        else:  # greedy, whatever the model's own generation_config samples with
            decoding = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        output = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            pad_token_id=self.pad_id,
            return_dict_in_generate=True,
            output_logits=True,
            **decoding,
        )
        new = output.sequences[0, ids.shape[1] :]
        if len(new) == 0:
            return Generation("", None)
        logits = torch.cat(output.logits).float()[: len(new)]
        chosen = torch.log_softmax(logits, dim=-1).gather(1, new[:, None])
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        return Generation(text, chosen.mean().item())
