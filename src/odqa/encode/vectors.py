"""Precomputed vectors ("odqa-vectors", version 1): passage vectors computed once (by
``odqa encode`` or another tool) and read by a build instead of encoding.

A folder holds ``vectors.json`` (written last) and, per shard, ``shard-00000.passages.jsonl``
(one ``{"doc_id": ..., "chunk": ...}`` line per passage, in corpus order) and
``shard-00000.npy``: shape ``(passages, dim)`` for dense vectors, ``(tokens, dim)`` for
ColBERT token vectors, then with ``shard-00000.doclens.npy`` (tokens of each passage).

:class:`VectorsWriter` writes a folder atomically; :class:`VectorsFolder` reads and checks
its description, and :meth:`VectorsFolder.cursor` streams its rows shard after shard, checking
each row (ids in order, finite values) as it is taken.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

import odqa.fs as fs
from odqa.errors import InputError
from odqa.fs import LOG, NpyAppender

FORMAT = "odqa-vectors"
FORMAT_VERSION = 1
DESCRIPTION = "vectors.json"
KINDS = ("dense", "colbert")
DTYPES = ("float16", "float32")
SHARD_PASSAGES = 100_000
UNFINISHED = "unfinished"
JOURNAL = "progress.json"

PassageId = tuple[str, int]


def read_npy_header(path: Path, handle: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the ``.npy`` open in ``handle``, left at the first value."""
    try:
        version = np.lib.format.read_magic(handle)
        read = {(1, 0): np.lib.format.read_array_header_1_0}.get(
            version, np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(handle)
    except ValueError as exc:
        raise InputError(f"not a .npy array ({exc})", path=path) from exc
    if fortran:
        raise InputError("a Fortran-ordered array; save it C-ordered", path=path)
    return shape, dtype


def unfinished_folder(target: Path) -> Path:
    """Where a resumable writer keeps the shards of a run not yet finished."""
    return target.with_name(f".{target.name}.{UNFINISHED}")


class VectorsWriter:
    """Writes an odqa-vectors folder: passages are added in corpus order, shards are cut every
    ``shard_passages`` passages, ``vectors.json`` is written by :meth:`finish`. The folder
    appears only then (built in a temporary sibling); an error or Ctrl-C leaves nothing.

    Resumable (``resume_key``: what identifies the run, e.g. the corpus's path, size and
    time): shards are cut only by :meth:`cut`, at whole documents, each recorded in a journal
    beside the folder (``.NAME.unfinished/progress.json``) as it closes. An error or Ctrl-C
    keeps the closed shards; a writer made again with the same key, kind, encoder and
    chunking takes them up (:attr:`documents_done` says how many documents they hold) and
    one with any other starts afresh.

    ``encoder`` is what the encoder records (``DenseEncoder.settings()`` or
    ``ColBERTEncoder.describe()``: model name, weights sha256...); ``chunking`` is
    ``{"tokens", "overlap", "tokenizer"}`` as an index manifest records it.
    Use it as a context manager, or call :meth:`finish` (and :meth:`abort` on failure).
    """

    def __init__(
        self,
        folder: str | Path,
        kind: str,
        encoder: dict[str, Any],
        dim: int,
        dtype: str = "float16",
        chunking: dict[str, Any] | None = None,
        *,
        shard_passages: int = SHARD_PASSAGES,
        overwrite: bool = False,
        resume_key: dict[str, Any] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
        if dtype not in DTYPES:
            raise InputError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if shard_passages < 1:
            raise InputError(f"shard_passages must be at least 1, got {shard_passages}")
        self.kind, self.encoder, self.dim, self.dtype = kind, dict(encoder), int(dim), dtype
        self.chunking = dict(chunking or {})
        self.shard_passages = shard_passages
        self.shards: list[dict[str, Any]] = []
        self.target = Path(folder).resolve()
        self._open: tuple[NpyAppender, Any, list[int]] | None = None
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(fs.writer_lock(self.target))  # one run at a time writes here
        try:
            self.key = None if resume_key is None else {**self._identity(), "run": resume_key}
            if self.key is None:
                self.staging = self._stack.enter_context(
                    fs.atomic_directory(folder, overwrite, is_vectors_folder, "odqa vectors folder")
                )
            else:
                what = "odqa vectors folder"
                fs.check_replaceable(self.target, overwrite, is_vectors_folder, what)
                self.staging = unfinished_folder(self.target)
                self.shards = self._take_up()
        except BaseException:
            self._stack.close()  # the lock let go: a refused writer holds nothing
            raise
        self.documents_done: int = self.shards[-1]["documents"] if self.shards else 0
        """Documents of the corpus the shards taken up from an unfinished run hold."""

    def _identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "encoder": self.encoder,
            "dim": self.dim,
            "dtype": self.dtype,
            "chunking": self.chunking,
        }

    def _take_up(self) -> list[dict[str, Any]]:
        """The closed shards of an unfinished run of this same job; anything else removed."""
        journal = self.staging / JOURNAL
        try:
            recorded = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        if not isinstance(recorded, dict) or recorded.get("key") != self.key:
            if isinstance(recorded, dict) and recorded.get("shards"):
                LOG.warning(
                    "starting afresh: %s since the unfinished run in %s; its %d shard(s) removed",
                    changed_since(recorded.get("key"), self.key),
                    self.staging,
                    len(recorded["shards"]),
                )
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging.mkdir(parents=True)
            return []
        shards = recorded["shards"]
        kept = {JOURNAL} | {
            f"{shard['name']}{suffix}"
            for shard in shards
            for suffix in (".npy", ".passages.jsonl", ".doclens.npy")
        }
        for entry in self.staging.iterdir():
            if entry.name not in kept:
                entry.unlink()
        return shards

    def __enter__(self) -> VectorsWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.finish()
        else:
            self.abort()

    def add(
        self,
        passage_ids: Sequence[PassageId],
        vectors: np.ndarray,
        doclens: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        """Append passages: ``(doc_id, chunk)`` pairs, their vectors (dense: one row each;
        colbert: their token rows, ``doclens`` tokens each)."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InputError(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        if self.kind == "dense":
            if doclens is not None:
                raise InputError("dense vectors take no doclens")
            lengths = np.ones(len(passage_ids), dtype=np.int64)
        else:
            if doclens is None:
                raise InputError("colbert vectors need doclens (tokens of each passage)")
            lengths = np.asarray(doclens, dtype=np.int64).reshape(-1)
        if len(lengths) != len(passage_ids) or int(lengths.sum()) != len(vectors):
            raise InputError(
                f"{len(passage_ids)} passage ids, {len(lengths)} doclens summing to "
                f"{int(lengths.sum())} and {len(vectors)} vector rows do not agree"
            )
        if not np.isfinite(vectors).all():
            raise InputError("vectors hold NaN or infinity")
        ends = np.cumsum(lengths)
        done = 0
        while done < len(passage_ids):
            rows, room = self._shard()
            take = min(room, len(passage_ids) - done)
            first = int(ends[done - 1]) if done else 0
            rows[0].append(vectors[first : int(ends[done + take - 1])])
            for doc_id, chunk in passage_ids[done : done + take]:
                rows[1].write(json.dumps({"doc_id": str(doc_id), "chunk": int(chunk)}) + "\n")
            rows[2].extend(int(length) for length in lengths[done : done + take])
            done += take
            if take == room:
                self._close_shard()

    @property
    def open_passages(self) -> int:
        """Passages added since the last shard was closed."""
        return 0 if self._open is None else len(self._open[2])

    def cut(self, documents: int) -> None:
        """Close the open shard, which ends with the corpus's ``documents``-th document, and
        record it in the journal (resumable writers cut only here)."""
        if self._open is None:
            return
        self._close_shard()
        self.shards[-1]["documents"] = documents
        fs.write_text(
            self.staging / JOURNAL, json.dumps({"key": self.key, "shards": self.shards}) + "\n"
        )

    def _shard(self) -> tuple[tuple[NpyAppender, Any, list[int]], int]:
        if self._open is None:
            name = shard_name(len(self.shards))
            array = NpyAppender(self.staging / f"{name}.npy", self.dtype, (self.dim,))
            lines = open(self.staging / f"{name}.passages.jsonl", "w", encoding="utf-8")  # noqa: SIM115
            self._open = (array, lines, [])
        if self.key is not None:  # cut by cut() alone
            return self._open, sys.maxsize
        return self._open, self.shard_passages - len(self._open[2])

    def _close_shard(self) -> None:
        array, lines, lengths = self._open
        array.close()
        lines.close()
        name = array.path.name.removesuffix(".npy")
        entry = {"name": name, "passages": len(lengths), "tokens": array.rows}
        if self.kind == "colbert":
            np.save(self.staging / f"{name}.doclens.npy", np.asarray(lengths, dtype=np.int32))
        else:
            del entry["tokens"]
        self.shards.append(entry)
        self._open = None

    def finish(self) -> Path:
        """Close the last shard, write ``vectors.json``, move the folder into place."""
        if self._open is not None:
            self._close_shard()
        description = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "encoder": self.encoder,
            "dim": self.dim,
            "dtype": self.dtype,
            "chunking": self.chunking,
            "passages": sum(shard["passages"] for shard in self.shards),
            "shards": self.shards,
        }
        if self.kind == "colbert":
            description["tokens"] = sum(shard["tokens"] for shard in self.shards)
        fs.write_text(self.staging / DESCRIPTION, json.dumps(description, indent=1) + "\n")
        if self.key is not None:
            (self.staging / JOURNAL).unlink(missing_ok=True)
            fs.replace_directory(self.staging, self.target)
        self._stack.close()  # the atomic directory swapped in, the lock let go
        return self.target

    def abort(self) -> None:
        """Remove everything written so far (resumable: but the closed shards)."""
        if self._open is not None:
            self._open[0].handle.close()
            self._open[1].close()
            self._open = None
        if self.key is None:
            pass
        elif self.shards:
            self._take_up()
        else:
            shutil.rmtree(self.staging, ignore_errors=True)
        self._stack.__exit__(InputError, InputError("aborted"), None)


def changed_since(recorded: Any, key: dict[str, Any]) -> str:
    """What differs between an unfinished run's key and this run's, in words."""
    if not isinstance(recorded, dict):
        return "its journal is unreadable"
    parts = [
        f"the {name} changed" for name in key if name != "run" and recorded.get(name) != key[name]
    ]
    run, before = key.get("run", {}), recorded.get("run") or {}
    if before.get("corpus") != run.get("corpus"):
        parts.append(f"the corpus is another ({before.get('corpus')} then)")
    elif before.get("input_format") != run.get("input_format"):
        parts.append("the input format changed")
    elif before != run:
        parts.append("the corpus changed (its size or time)")
    return "; ".join(parts) or "its journal is of another odqa"


def shard_name(number: int) -> str:
    return f"shard-{number:05d}"


def is_vectors_folder(folder: Path) -> bool:
    return (folder / DESCRIPTION).is_file()


@dataclass(frozen=True)
class Shard:
    name: str
    passages: int
    tokens: int


class VectorsFolder:
    """An odqa-vectors folder, its description read and checked (file, field) on opening."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        path = self.folder / DESCRIPTION
        if not path.is_file():
            raise InputError(
                f"not a precomputed-vectors folder (no {DESCRIPTION}; write one with odqa encode)",
                path=self.folder,
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"not valid JSON ({exc})", path=path) from exc
        self.path = path
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"not an {FORMAT} description", path=path, field="format")
        if data.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"format version {data.get('format_version')!r}; this odqa reads version "
                f"{FORMAT_VERSION}",
                path=path,
                field="format_version",
            )
        self.kind: str = self._field(data, "kind", str, KINDS)
        self.dtype: str = self._field(data, "dtype", str, DTYPES)
        self.dim: int = self._field(data, "dim", int)
        self.encoder: dict = self._field(data, "encoder", dict)
        self.chunking: dict = self._field(data, "chunking", dict)
        self.passages: int = self._field(data, "passages", int)
        shards = self._field(data, "shards", list)
        self.shards = [self._shard(entry, number) for number, entry in enumerate(shards)]
        if sum(shard.passages for shard in self.shards) != self.passages:
            raise InputError(
                f"the shards hold {sum(s.passages for s in self.shards)} passages, not "
                f"{self.passages}",
                path=path,
                field="passages",
            )
        self.tokens = sum(shard.tokens for shard in self.shards)

    def _field(self, data: dict, name: str, kind: type, allowed: Sequence | None = None) -> Any:
        value = data.get(name)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise InputError(f"missing or not a {kind.__name__}", path=self.path, field=name)
        if allowed is not None and value not in allowed:
            raise InputError(f"must be one of {allowed}, got {value!r}", path=self.path, field=name)
        return value

    def _shard(self, entry: Any, number: int) -> Shard:
        field = f"shards[{number}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("passages"), int):
            raise InputError("needs a name and passages", path=self.path, field=field)
        if entry.get("name") != shard_name(number):
            raise InputError(
                f"name {entry.get('name')!r}, expected {shard_name(number)!r}",
                path=self.path,
                field=f"{field}.name",
            )
        tokens = entry.get("tokens", entry["passages"]) if self.kind == "colbert" else None
        if self.kind == "colbert" and not isinstance(tokens, int):
            raise InputError("colbert shards need tokens", path=self.path, field=f"{field}.tokens")
        return Shard(
            entry["name"], entry["passages"], entry["passages"] if tokens is None else tokens
        )

    def check_encoder(self, settings: dict[str, Any]) -> None:
        """Refuse vectors another model (other weights, or other encoder settings) made."""
        if self.encoder.get("sha256") != settings["sha256"]:
            raise InputError(
                f"the vectors were made by {self.encoder.get('model')} (weights sha256 "
                f"{str(self.encoder.get('sha256'))[:12]}…), not by {settings['model']} (sha256 "
                f"{settings['sha256'][:12]}…); pass the model that made them (--model / "
                "--colbert-model) or encode again",
                path=self.path,
                field="encoder.sha256",
            )
        for key, value in settings.items():
            if key not in ("model", "sha256") and self.encoder.get(key) != value:
                raise InputError(
                    f"the vectors were made with {key} {self.encoder.get(key)!r}, the model "
                    f"here has {value!r}",
                    path=self.path,
                    field=f"encoder.{key}",
                )
        if self.dim != settings.get("dim", self.dim):
            raise InputError(
                f"dimension {self.dim}, the model's is {settings['dim']}",
                path=self.path,
                field="dim",
            )

    def check_chunking(self, tokens: int, overlap: int, tokenizer: str) -> None:
        """Refuse vectors of passages cut otherwise than this build cuts them."""
        recorded = self.chunking
        for key, value, flag in (
            ("tokens", tokens, "--chunk-tokens"),
            ("overlap", overlap, "--chunk-overlap"),
        ):
            if recorded.get(key) != value:
                raise InputError(
                    f"the vectors' passages were cut with {key} {recorded.get(key)!r}, this "
                    f"build cuts with {value}; pass {flag} {recorded.get(key)}",
                    path=self.path,
                    field=f"chunking.{key}",
                )
        chunked_by = recorded.get("tokenizer")
        if chunked_by not in (tokenizer, self.encoder.get("model")):
            raise InputError(
                f"the vectors' passages were cut with the tokenizer of {chunked_by}, this build "
                f"cuts with that of {tokenizer}; pass --model {chunked_by}",
                path=self.path,
                field="chunking.tokenizer",
            )

    def cursor(self) -> VectorsCursor:
        return VectorsCursor(self)

    def rows_of(self, doc_ids: set[str]) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of every passage of the documents ``doc_ids``, in the folder's order
        and dtype, and the rows each passage has: what a build trains on when it samples
        these documents. One pass over the shards' passage lines, then the rows taken are
        read into one array (a 1M-passage ColBERT sample is about 1 GB in float16)."""
        taken: list[tuple[np.ndarray, int, int]] = []
        lengths: list[np.ndarray] = []
        for shard in self.shards:
            rows, doclens = self.shard_arrays(shard)
            starts = np.concatenate([[0], np.cumsum(doclens)])
            lines = self.folder / f"{shard.name}.passages.jsonl"
            with open(lines, encoding="utf-8") as handle:
                for number, line in enumerate(handle):
                    try:
                        doc_id = json.loads(line)["doc_id"]
                    except (ValueError, KeyError, TypeError) as exc:
                        raise InputError(
                            'not a {"doc_id": ..., "chunk": ...} line', path=lines, line=number + 1
                        ) from exc
                    if number >= len(doclens):
                        raise InputError(
                            f"holds more than the {len(doclens)} passages {DESCRIPTION} says",
                            path=lines,
                            line=number + 1,
                        )
                    if doc_id in doc_ids:
                        taken.append((rows, int(starts[number]), int(starts[number + 1])))
                        lengths.append(doclens[number : number + 1])
        if not taken:
            raise InputError(
                "holds none of the sampled documents' passages: the vectors were made from "
                "another corpus",
                path=self.path,
                field="shards",
            )
        out = np.empty((sum(stop - start for _, start, stop in taken), self.dim), self.dtype)
        at = 0
        for rows, start, stop in taken:
            out[at : at + stop - start] = rows[start:stop]
            at += stop - start
        return out, np.concatenate(lengths)

    def shard_arrays(self, shard: Shard) -> tuple[np.ndarray, np.ndarray]:
        """One shard's rows (memory-mapped: only the rows read are paged in) and the rows
        each passage has, checked against the description."""
        opened = _OpenShard(self, shard)
        doclens = opened.doclens
        opened.handle.close()
        opened.lines.close()
        return np.load(opened.array_path, mmap_mode="r"), doclens


class _OpenShard:
    """One shard being read: its arrays' handles and its passage lines."""

    def __init__(self, folder: VectorsFolder, shard: Shard) -> None:
        self.shard = shard
        base = folder.folder / shard.name
        self.array_path = base.with_name(f"{shard.name}.npy")
        self.lines_path = base.with_name(f"{shard.name}.passages.jsonl")
        for path in (self.array_path, self.lines_path):
            if not path.is_file():
                raise InputError("missing (the folder is incomplete)", path=path)
        self.handle = open(self.array_path, "rb")  # noqa: SIM115 - closed by close()
        shape, dtype = read_npy_header(self.array_path, self.handle)
        if len(shape) != 2 or shape[1] != folder.dim:
            raise InputError(
                f"shape {shape}, expected (rows, {folder.dim}) (the dimension in {DESCRIPTION})",
                path=self.array_path,
                field="dim",
            )
        if shape[0] != shard.tokens:
            raise InputError(
                f"{shape[0]} rows, {DESCRIPTION} says {shard.tokens}",
                path=self.array_path,
                field="rows",
            )
        self.dtype = dtype
        if folder.kind == "colbert":
            doclens_path = base.with_name(f"{shard.name}.doclens.npy")
            if not doclens_path.is_file():
                raise InputError("missing (the folder is incomplete)", path=doclens_path)
            self.doclens = np.load(doclens_path).astype(np.int64).reshape(-1)
            if len(self.doclens) != shard.passages or int(self.doclens.sum()) != shard.tokens:
                raise InputError(
                    f"{len(self.doclens)} doclens summing to {int(self.doclens.sum())}; "
                    f"{DESCRIPTION} says {shard.passages} passages, {shard.tokens} tokens",
                    path=doclens_path,
                    field="doclens",
                )
        else:
            self.doclens = np.ones(shard.passages, dtype=np.int64)
        self.lines = open(self.lines_path, encoding="utf-8")  # noqa: SIM115
        self.passage = 0
        self.row = 0

    def ids(self, count: int) -> Iterator[tuple[int, PassageId]]:
        for _ in range(count):
            line = self.lines.readline()
            number = self.passage + 1
            if not line:
                raise InputError(
                    f"ends after {self.passage} passages, {DESCRIPTION} says {self.shard.passages}",
                    path=self.lines_path,
                    line=number,
                )
            try:
                record = json.loads(line)
                found = (record["doc_id"], record["chunk"])
            except (json.JSONDecodeError, TypeError, KeyError) as exc:
                raise InputError(
                    'not a {"doc_id": ..., "chunk": ...} line', path=self.lines_path, line=number
                ) from exc
            self.passage += 1
            yield number, found

    def close(self) -> None:
        if self.lines.readline():
            raise InputError(
                f"holds more than the {self.shard.passages} passages {DESCRIPTION} says",
                path=self.lines_path,
                line=self.shard.passages + 1,
            )
        self.handle.close()
        self.lines.close()


class VectorsCursor:
    """The folder's rows in order, taken passage by passage against the corpus's passages."""

    def __init__(self, folder: VectorsFolder) -> None:
        self.folder = folder
        self.shards = iter(folder.shards)
        self.current: _OpenShard | None = None
        self.taken = 0

    def take(self, passages: Sequence[PassageId]) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of ``passages`` (the next ones in corpus order) as float32, and the
        rows each passage has (1 for dense); an ``InputError`` naming the shard file and its
        row or line if an id differs or a row holds NaN or infinity."""
        parts: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        done = 0
        while done < len(passages):
            shard = self._shard(passages[done:])
            take = min(len(passages) - done, shard.shard.passages - shard.passage)
            first_row = shard.row
            doclens = shard.doclens[shard.passage : shard.passage + take]
            for (line, found), wanted in zip(
                shard.ids(take), passages[done : done + take], strict=True
            ):
                if (str(found[0]), found[1]) != (str(wanted[0]), int(wanted[1])):
                    raise InputError(
                        f"passage {found[0]}#{found[1]} where the corpus has "
                        f"{wanted[0]}#{wanted[1]}: the vectors were made from another corpus "
                        "(or other chunking)",
                        path=shard.lines_path,
                        line=line,
                    )
            count = int(doclens.sum())
            rows = np.fromfile(shard.handle, dtype=shard.dtype, count=count * self.folder.dim)
            if len(rows) != count * self.folder.dim:
                raise InputError(
                    f"ends before row {first_row + len(rows) // self.folder.dim + 1}",
                    path=shard.array_path,
                )
            rows = rows.reshape(count, self.folder.dim).astype(np.float32, copy=False)
            bad = ~np.isfinite(rows).all(axis=1)
            if bad.any():
                row = first_row + int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"row {row + 1} holds NaN or infinity", path=shard.array_path, field="rows"
                )
            shard.row += count
            parts.append(rows)
            lengths.append(doclens)
            done += take
            self.taken += take
        if not parts:
            return np.zeros((0, self.folder.dim), np.float32), np.zeros(0, np.int64)
        return np.concatenate(parts), np.concatenate(lengths)

    def _shard(self, wanted: Sequence[PassageId]) -> _OpenShard:
        while self.current is None or self.current.passage == self.current.shard.passages:
            if self.current is not None:
                self.current.close()
            shard = next(self.shards, None)
            if shard is None:
                raise InputError(
                    f"holds {self.folder.passages} passages, the corpus has more (passage "
                    f"{wanted[0][0]}#{wanted[0][1]} has no vector)",
                    path=self.folder.path,
                    field="passages",
                )
            self.current = _OpenShard(self.folder, shard)
        return self.current

    def close(self) -> None:
        """Check every row of the folder was taken."""
        if self.taken != self.folder.passages:
            raise InputError(
                f"holds {self.folder.passages} passages, the corpus has {self.taken}",
                path=self.folder.path,
                field="passages",
            )
        if self.current is not None:
            self.current.close()
