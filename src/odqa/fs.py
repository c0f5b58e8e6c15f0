"""Atomic files and directories: write a temporary sibling, then rename it into place.

One naming rule for every temporary: ``.NAME.PURPOSE-TOKEN`` beside ``NAME`` (``PURPOSE`` is
``partial`` for something being written, ``old`` for a directory being retired), so a
crash leaves either the old thing or the new one at the path, and leftovers are recognisable.

A directory is swapped in by exchanging the two names in one step (Linux ``renameat2``
with ``RENAME_EXCHANGE``); where that is not available, by two renames, and a swap cut
between them is undone by :func:`recover_directory` on the next open. Writers of one
directory exclude each other with :func:`writer_lock`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import io
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from odqa.errors import OdqaError

PARTIAL = "partial"
RETIRED = "old"
LOCK = "lock"
AT_FDCWD = -100
RENAME_EXCHANGE = 2
RENAMEAT2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
"""glibc's renameat2 (2.28 and later); None where the C library has none."""
LOG = logging.getLogger("odqa")
SWAP_WAIT = 10.0
"""Seconds a reader waits for a live writer to finish a two-rename swap."""


def temporary_sibling(path: str | Path, purpose: str = PARTIAL) -> Path:
    """A fresh name beside ``path`` following the one naming rule."""
    path = Path(path)
    return path.with_name(f".{path.name}.{purpose}-{uuid.uuid4().hex[:12]}")


def directory_identity(path: str | Path) -> tuple[int, int] | None:
    """What tells one directory from another put at the same path (device and inode): a
    swap puts a new one there. None when nothing is there (between two renames, say)."""
    try:
        stat = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stat.st_dev, stat.st_ino


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


NPY_HEADER = 128
"""Bytes reserved for the header of a ``.npy`` written row by row (:class:`NpyAppender`)."""


class NpyAppender:
    """A ``.npy`` of rows of ``row_shape`` written a block at a time, never whole in memory:
    header space is reserved first, and the header (with the final row count) written by
    :meth:`close`. Write it inside a staging folder (:func:`atomic_directory`) or under
    :func:`atomic_file`: until closed, the file is not an array."""

    def __init__(self, path: Path, dtype: str | np.dtype | type, row_shape: tuple = ()) -> None:
        self.path, self.dtype, self.row_shape = path, np.dtype(dtype), tuple(row_shape)
        self.rows = 0
        self.handle: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.handle.write(b"\0" * NPY_HEADER)

    def append(self, rows: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.rows += len(rows)

    def close(self, expected: int | None = None) -> Path:
        """Write the header; ``expected``: the row count there must be (else ValueError)."""
        if expected is not None and self.rows != expected:
            self.handle.close()
            raise ValueError(f"{self.path}: {self.rows:,} rows written, {expected:,} expected")
        header = io.BytesIO()
        shape = (self.rows, *self.row_shape)
        info = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(header, {**info, "shape": shape})
        if len(header.getvalue()) != NPY_HEADER:
            raise ValueError(f"npy header of {shape} is not {NPY_HEADER} bytes")
        self.handle.seek(0)
        self.handle.write(header.getvalue())
        self.handle.close()
        return self.path


def lock_path(target: Path) -> Path:
    """The lock file of ``target``: ``.NAME.lock`` beside it."""
    return target.with_name(f".{target.name}.{LOCK}")


@contextlib.contextmanager
def writer_lock(target: str | Path) -> Iterator[None]:
    """Hold the lock of ``target`` (the file ``.NAME.lock`` beside it) while the body runs;
    a second writer waits here until the first is done, then sees its result.

    The lock file lasts only as long as a writer holds it (a killed writer's stays until the
    next one is done): the holder removes it before letting go, and a waiter that then finds
    it got the lock of a removed file tries again on the new one."""
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(target)
    while True:
        handle = open(path, "a")  # noqa: SIM115 - closed below
        fcntl.flock(handle, fcntl.LOCK_EX)
        if _is_file_at(handle, path):
            break
        handle.close()
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        handle.close()  # lets go of the lock


def _is_file_at(handle: BinaryIO | io.TextIOWrapper, path: Path) -> bool:
    """Whether the open ``handle`` is the file now at ``path`` (not one since removed)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)


def writer_active(target: Path) -> bool:
    """Whether a live writer holds ``target``'s lock now (a killed one's is free)."""
    try:
        descriptor = os.open(lock_path(target), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # lets go of the shared lock, if taken
    return False


@contextlib.contextmanager
def atomic_directory(
    target: str | Path,
    overwrite: bool = False,
    replaceable: Callable[[Path], bool] | None = None,
    what: str = "directory",
) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target``; on success it replaces ``target``.

    If the body raises (bad input, Ctrl-C), the temporary folder is removed and ``target``
    is left exactly as it was. An existing ``target`` is refused unless ``overwrite``; even
    then, a plain file is refused, and so is a non-empty directory that ``replaceable``
    does not accept (``what`` names what it should have been).
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target, locked=True)
    check_replaceable(target, overwrite, replaceable, what)
    staging = temporary_sibling(target)
    staging.mkdir()
    try:
        yield staging
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_replaceable(
    target: Path, overwrite: bool, replaceable: Callable[[Path], bool] | None, what: str
) -> None:
    """Refuse to replace anything at ``target`` that is not ours to replace."""
    if not os.path.lexists(target):
        return
    if not overwrite:
        raise OdqaError(
            f"{target} already exists; pass --overwrite (overwrite=True in Python) to replace it"
        )
    if not target.is_dir() or target.is_symlink():
        raise OdqaError(f"{target} is a file, not an {what}; refusing to replace it")
    if replaceable is not None and any(target.iterdir()) and not replaceable(target):
        names = sorted(entry.name for entry in target.iterdir())
        shown = first_three(names)
        raise OdqaError(
            f"{target} holds {len(names)} entries ({shown}) and is not an {what}; "
            "--overwrite replaces only an existing one or an empty folder"
        )


def replace_directory(staging: Path, target: Path) -> None:
    """Swap ``staging`` into ``target`` in one step where the system allows, then delete the
    old one; elsewhere the old one is moved aside first (see :func:`recover_directory`)."""
    if not target.exists():
        os.rename(staging, target)
        return
    if exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)
        return
    retired = temporary_sibling(target, RETIRED)
    os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def exchange(first: Path, second: Path) -> bool:
    """Exchange two paths' names atomically; False where the system cannot."""
    if RENAMEAT2 is None:
        return False
    done = RENAMEAT2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(second))


LEGACY = ("building", "updating")
"""Purposes of temporaries that odqa 0.1's first releases named by another rule."""


def first_three(names: list[str]) -> str:
    """``names`` as a message shows them: the first three, then "…" if there are more."""
    return ", ".join(names[:3]) + (", …" if len(names) > 3 else "")


def leftovers(target: str | Path) -> list[Path]:
    """The temporaries of interrupted runs beside ``target`` (and of a live writer's run:
    see :func:`writer_active`)."""
    target = Path(target)
    return [
        entry
        for purpose in (PARTIAL, RETIRED, *LEGACY)
        for entry in sorted(target.parent.glob(f".{target.name}.{purpose}-*"))
    ]


def remove_leftovers(target: str | Path) -> list[str]:
    """Delete the temporaries of interrupted runs beside ``target`` (after a cut swap is
    recovered), saying so as a warning of the ``odqa`` logger (the CLI shows it); returns
    their names. Call it holding :func:`writer_lock`: no live writer of ``target`` can own
    one then."""
    target = Path(target)
    recover_directory(target, locked=True)
    removed = []
    for entry in leftovers(target):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    if removed:
        shown = first_three(removed)
        LOG.warning(
            "removed %d leftover(s) of interrupted runs beside %s: %s", len(removed), target, shown
        )
    return removed


def _bytes_under(entries: list[Path]) -> int:
    """Bytes of the files ``entries`` are or hold; what a writer starting beside the
    reader removes meanwhile counts 0."""
    total = 0
    for entry in entries:
        try:
            paths = [entry] if entry.is_file() else list(entry.rglob("*"))
            total += sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink())
        except OSError:
            continue
    return total


def warn_of_leftovers(target: str | Path) -> None:
    """Say (a warning of the ``odqa`` logger) what interrupted runs left beside ``target``
    and how much disk it holds, unless a live writer is at work there."""
    target = Path(target)
    found = leftovers(target)
    if not found or writer_active(target):
        return
    size = _bytes_under(found)
    shown = first_three([entry.name for entry in found])
    LOG.warning(
        "warning: %d leftover(s) of interrupted runs (%d MiB) beside %s: %s; the next build "
        "or update of it removes them",
        len(found),
        size >> 20,
        target,
        shown,
    )


def recover_directory(target: str | Path, locked: bool = False) -> bool:
    """Undo a swap cut between its two renames: with nothing at ``target`` and the old
    directory retired beside it, put the old one back. True when it did.

    A reader (``locked`` False: it does not hold the writer lock) that finds a live writer
    inside that window waits for the new directory instead (:data:`SWAP_WAIT` seconds at
    most): the window is two renames long, and putting the old one back would make the
    writer's second rename fail."""
    target = Path(target)
    deadline = time.monotonic() + SWAP_WAIT
    while True:
        if os.path.lexists(target):
            return False
        retired = sorted(target.parent.glob(f".{target.name}.{RETIRED}-*"))
        if len(retired) != 1 or not retired[0].is_dir():
            return False
        if locked or not writer_active(target):
            try:
                os.rename(retired[0], target)
            except FileNotFoundError:  # another reader put it back first
                return False
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
