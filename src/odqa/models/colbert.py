"""ColBERT (late interaction) encoder: each text becomes a matrix of L2-normalised token vectors.

A query is scored against a document by MaxSim: the sum, over the query's vectors, of the best
dot product with the document's vectors. This module only encodes; see
:mod:`odqa.models.colbert_layouts` for the checkpoint layouts and their rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from odqa.errors import OdqaError
from odqa.models.batching import length_batches, token_lengths
from odqa.models.checkpoint import ModelRef, load_transformer, resolve_model
from odqa.models.colbert_layouts import ColBERTSettings, Projection, read_layout
from odqa.models.device import autocast_context, default_batch, pick_device, use_bf16

__all__ = ["ColBERTEncoder", "ColBERTSettings"]


class ColBERTEncoder:
    """Encodes queries and documents into token vectors for late-interaction retrieval.

    The layout (``"stanford"``, ``"pylate"`` or ``"plain"``) is read from the model folder;
    ``query_maxlen``/``doc_maxlen`` override the folder's lengths (capped at the model's limit).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str | None = None,
        precision: str = "auto",
        query_maxlen: int | None = None,
        doc_maxlen: int | None = None,
    ) -> None:
        self.ref: ModelRef = resolve_model(model)
        layout = read_layout(self.ref.path)
        self.layout: str = layout.name
        self.device = pick_device(device)
        use_bf16(self.device, precision)  # rejects an unknown precision now
        self.precision = precision
        self.tokenizer, self.model = load_transformer(layout.encoder_folder, self.device)
        self.projection = torch.nn.Sequential(*layout.projections).to(self.device).eval()
        self._check_projection(layout.projections)
        self.settings: ColBERTSettings = self._fit_lengths(
            layout.settings, query_maxlen, doc_maxlen
        )
        self.dim: int = self.settings.dim
        self._query_marker = self._marker_id(self.settings.query_marker)
        self._doc_marker = self._marker_id(self.settings.doc_marker)
        if self.settings.query_augmentation and self.tokenizer.mask_token_id is None:
            raise OdqaError(f"{self.ref.path}: query augmentation needs a [MASK] token")
        self._skip = self._skip_lookup()
        self.last_truncated: int = 0

    def describe(self) -> dict:
        """What an index records about this encoder (JSON-serialisable)."""
        settings = dataclasses.asdict(self.settings)
        settings["skiplist"] = list(self.settings.skiplist)
        return {
            "model": self.ref.name,
            "sha256": self.ref.sha256,
            "layout": self.layout,
            **settings,
        }

    def encode_queries(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Query matrices ``Q`` (n, L, dim) float32 and their mask (n, L) bool, in input order.

        With query augmentation every one of the ``query_maxlen`` positions is kept ([MASK]
        padding included); otherwise ``L`` is the longest query and padding is masked out.
        Punctuation is never dropped from queries: a query of only punctuation still has vectors.
        """
        width = self.settings.query_maxlen
        vectors = torch.zeros(len(texts), width, self.dim)
        mask = torch.zeros(len(texts), width, dtype=torch.bool)
        truncated = 0
        for rows in self._batches(texts, batch_size, show_progress, "queries"):
            ids, attention, cut = self.tokenize([texts[i] for i in rows], query=True)
            keep = self.query_mask(attention)
            out = self._embed(ids, attention) * keep.unsqueeze(-1).to(self.device)
            vectors[rows, : ids.shape[1]] = out.cpu()
            mask[rows, : ids.shape[1]] = keep
            truncated += cut
        if not self.settings.query_augmentation:
            width = int(mask.sum(dim=1).max()) if len(texts) else 0
        self.last_truncated = truncated
        return vectors[:, :width].contiguous(), mask[:, :width].contiguous()

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Kept token vectors of all documents, concatenated in input order, and their doclens.

        Returns float32 ``(total_tokens, dim)`` and int64 ``(n,)``. Punctuation is dropped. The
        plain layout also drops [CLS]/[SEP], so an empty or all-punctuation document has doclen
        0; the Stanford and PyLate layouts keep [CLS], the marker and [SEP] as their references
        do (doclen 3 there). Documents over ``doc_maxlen`` tokens are truncated;
        ``last_truncated`` counts them.
        """
        parts: list[torch.Tensor] = []
        lengths: list[torch.Tensor] = []
        order: list[int] = []
        truncated = 0
        for rows in self._batches(texts, batch_size, show_progress, "documents"):
            ids, attention, cut = self.tokenize([texts[i] for i in rows], query=False)
            keep = self.document_mask(ids, attention)
            out = self._embed(ids, attention)
            parts.append(out[keep.to(self.device)].cpu())
            lengths.append(keep.sum(dim=1))
            order.extend(rows)
            truncated += cut
        self.last_truncated = truncated
        if not order:
            return torch.zeros(0, self.dim), torch.zeros(0, dtype=torch.int64)
        return _restore_order(torch.cat(parts), torch.cat(lengths), torch.tensor(order))

    def document_mask(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """Which document token positions are kept (not padding, punctuation or skipped)."""
        return attention.bool() & ~self._skip[ids]

    def query_mask(self, attention: torch.Tensor) -> torch.Tensor:
        """Which query token positions are scored (all of them under query augmentation)."""
        keep = attention.bool()
        return torch.ones_like(keep) if self.settings.query_augmentation else keep

    def _batches(
        self, texts: Sequence[str], batch_size: int | None, show_progress: bool, what: str
    ) -> Iterator[list[int]]:
        """Row indices of each batch: the whole call by token length, longest first."""
        query = what == "queries"
        lengths = token_lengths(texts, lambda block: self._token_ids(block, query=query))
        batches = length_batches(
            lengths, default_batch(self.device) if batch_size is None else batch_size
        )
        yield from tqdm(batches, desc=f"encoding {what}", unit="batch", disable=not show_progress)

    def _token_ids(self, texts: list[str], *, query: bool) -> list[list[int]]:
        """Token ids of ``texts`` as :meth:`tokenize` cuts them (before padding and marker)."""
        maxlen = self.settings.query_maxlen if query else self.settings.doc_maxlen
        marker = self._query_marker if query else self._doc_marker
        prepared = [self._prepare(text) for text in texts]
        cut = maxlen - (marker is not None)
        return self.tokenizer(prepared, truncation=True, max_length=cut)["input_ids"]

    def tokenize(
        self, texts: list[str], *, query: bool, maxlen: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Token ids and attention mask (CPU), and how many texts were truncated.

        ``maxlen`` shortens documents below ``doc_maxlen`` (training uses shorter texts).
        """
        settings = self.settings
        marker = self._query_marker if query else self._doc_marker
        augment = query and settings.query_augmentation
        maxlen = settings.query_maxlen if query else min(maxlen or 1 << 30, settings.doc_maxlen)
        batch = self.tokenizer(
            [self._prepare(text) for text in texts],
            truncation=True,
            max_length=maxlen - (marker is not None),
            padding="max_length" if augment else "longest",
            return_tensors="pt",
        )
        truncated = sum(bool(encoding.overflowing) for encoding in batch.encodings)
        ids, attention = batch["input_ids"], batch["attention_mask"]
        if augment:
            ids = ids.masked_fill(attention == 0, self.tokenizer.mask_token_id)
            if settings.attend_to_mask_tokens:
                attention = torch.ones_like(attention)
        if marker is not None:
            ids, attention = _insert_second(ids, marker), _insert_second(attention, 1)
        return ids, attention, truncated

    def _prepare(self, text: str) -> str:
        if self.settings.strip_text:
            text = text.strip()
        return text.lower() if self.settings.lowercase else text

    @torch.inference_mode()
    def _embed(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        return self.token_vectors(ids, attention)

    def token_vectors(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """Projected (and normalised) float32 token vectors (batch, tokens, dim) on the device.

        Differentiable: training calls it with gradients; encoding under inference mode.
        """
        ids, attention = ids.to(self.device), attention.to(self.device)
        with autocast_context(self.device, self.precision):
            hidden = self.model(input_ids=ids, attention_mask=attention).last_hidden_state
            vectors = self.projection(hidden)
        vectors = vectors.float()
        return (
            torch.nn.functional.normalize(vectors, dim=-1) if self.settings.normalize else vectors
        )

    def _check_projection(self, projections: Sequence[Projection]) -> None:
        """Each projection's input width must be the previous output (first: the hidden size)."""
        width = int(self.model.config.hidden_size)
        for projection in projections:
            if projection.linear.in_features != width:
                raise OdqaError(
                    f"{self.ref.path}: a projection expects {projection.linear.in_features} "
                    f"inputs but receives {width}"
                )
            width = projection.linear.out_features

    def _fit_lengths(
        self, settings: ColBERTSettings, query_maxlen: int | None, doc_maxlen: int | None
    ) -> ColBERTSettings:
        """Apply length overrides, capped at what the model and tokenizer can take."""
        limit = min(
            int(getattr(self.model.config, "max_position_embeddings", 512)),
            int(self.tokenizer.model_max_length),
        )
        query = min(query_maxlen or settings.query_maxlen, limit)
        doc = min(doc_maxlen or settings.doc_maxlen, limit)
        if min(query, doc) < 3:
            raise OdqaError(f"query_maxlen and doc_maxlen must be at least 3, got {query}/{doc}")
        return dataclasses.replace(settings, query_maxlen=query, doc_maxlen=doc)

    def _marker_id(self, marker: str | None) -> int | None:
        if marker is None:
            return None
        token_id = self.tokenizer.convert_tokens_to_ids(marker)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise OdqaError(f"{self.ref.path}: marker token {marker!r} is not in the vocabulary")
        return int(token_id)

    def _skip_lookup(self) -> torch.Tensor:
        """Boolean table over token ids: True for ids dropped from documents."""
        size = max(len(self.tokenizer), int(self.model.config.vocab_size))
        skip = torch.zeros(size, dtype=torch.bool)
        skip[sorted(self._skip_ids())] = True
        return skip

    def _skip_ids(self) -> set[int]:
        settings, tok = self.settings, self.tokenizer
        ids: set[int | None] = set()
        if settings.mask_punctuation and settings.skiplist_rule == "vocab":
            ids.update(tok.convert_tokens_to_ids(list(settings.skiplist)))
        elif settings.mask_punctuation:
            pieces = (tok.encode(word, add_special_tokens=False) for word in settings.skiplist)
            ids.update(piece[0] for piece in pieces if piece)
        if settings.drop_special_on_documents:
            ids.update((tok.cls_token_id, tok.sep_token_id, tok.bos_token_id, tok.eos_token_id))
        return {int(i) for i in ids if i is not None}


def _insert_second(tensor: torch.Tensor, value: int) -> torch.Tensor:
    """Put a column of ``value`` right after the first column (after [CLS])."""
    column = torch.full((tensor.shape[0], 1), value, dtype=tensor.dtype)
    return torch.cat([tensor[:, :1], column, tensor[:, 1:]], dim=1)


def _restore_order(
    vectors: torch.Tensor, lengths: torch.Tensor, order: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder concatenated per-document vectors from encoding order back to input order.

    ``order[k]`` is the input index of the k-th document encoded; ``lengths`` are in that order.
    """
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order))
    starts = (torch.cumsum(lengths, 0) - lengths)[position]
    doclens = lengths[position].to(torch.int64)
    offsets = torch.cumsum(doclens, 0) - doclens
    index = torch.arange(int(doclens.sum())) + torch.repeat_interleave(starts - offsets, doclens)
    return vectors[index], doclens
