"""Atomic files and directories: write a temporary sibling, then rename it into place.

One naming rule for every temporary: ``.NAME.PURPOSE-TOKEN`` beside ``NAME`` (``PURPOSE`` is
``partial`` for something being written, ``old`` for a directory being retired), so a
crash leaves either the old thing or the new one at the path, and leftovers are recognisable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from odqa.errors import OdqaError

PARTIAL = "partial"
RETIRED = "old"


def temporary_sibling(path: str | Path, purpose: str = PARTIAL) -> Path:
    """A fresh name beside ``path`` following the one naming rule."""
    path = Path(path)
    return path.with_name(f".{path.name}.{purpose}-{uuid.uuid4().hex[:12]}")


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary written by :func:`temporary_sibling`."""
    return name.startswith(".") and any(f".{p}-" in name for p in (PARTIAL, RETIRED))


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed over ``path``, on failure
    removed, so ``path`` holds the old content or the whole new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_sibling(path)
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, flushed to disk before the rename."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_file(path) as partial, open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def save_array(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` ``array`` to ``path`` (the name kept as given) atomically."""
    with atomic_file(path) as partial, open(partial, "wb") as handle:
        np.save(handle, array)


@contextlib.contextmanager
def atomic_directory(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target``; on success it replaces ``target``.

    If the body raises (bad input, Ctrl-C), the temporary folder is removed and ``target``
    is left exactly as it was. An existing ``target`` is refused unless ``overwrite``.
    """
    target = Path(target).resolve()
    if target.exists() and not overwrite:
        raise OdqaError(f"{target} already exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = temporary_sibling(target)
    staging.mkdir()
    try:
        yield staging
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_directory(staging: Path, target: Path) -> None:
    """Swap ``staging`` into ``target``; the old one is moved aside first, then deleted."""
    if not target.exists():
        os.rename(staging, target)
        return
    retired = temporary_sibling(target, RETIRED)
    os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
