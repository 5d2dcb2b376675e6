"""Atomic writes: a reader (or a resumed run) never sees a half-written file or folder."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _remove_stale_temporaries(target: Path) -> None:
    """Temporaries a killed run left beside ``target`` (a kill skips ``finally``).

    A previous folder set aside by the fallback swap is put back first if the kill came
    between setting it aside and moving the new one in.
    """
    for aside in target.parent.glob(f".{target.name}.*.previous"):
        if not target.exists():
            os.replace(aside, target)
        else:
            shutil.rmtree(aside, ignore_errors=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange_paths(first: Path, second: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    False where the kernel, C library or file system cannot; then nothing was changed.
    """
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    status = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if status == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(error, os.strerror(error), str(first), None, str(second))


def _replace_folder(tmp: Path, target: Path) -> None:
    """Put ``tmp`` at ``target`` so that a kill at any moment leaves a complete folder there,
    the old or the new one (or, with the fallback, the old one set aside for the next run to
    put back)."""
    if not target.exists():
        os.replace(tmp, target)
        return
    if exchange_paths(tmp, target):  # tmp now holds the previous folder
        shutil.rmtree(tmp)
        return
    aside = tmp.with_name(tmp.name.removesuffix(".tmp") + ".previous")
    os.replace(target, aside)
    os.replace(tmp, target)
    shutil.rmtree(aside)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder; it replaces ``path`` only if the block succeeds.

    The previous folder stays complete until the new one takes its place, whenever the
    process dies.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _replace_folder(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    from .errors import InputFileError

    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise InputFileError(f"{path} is missing: rerun the workflow stage that writes it") from exc
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path} is not valid JSON ({exc}): delete it and rerun") from exc


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    # np.savez appends ".npz" to names without it; write through a handle to keep our name.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    from .errors import InputFileError

    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError as exc:
        raise InputFileError(f"{path} is missing: rerun the workflow stage that writes it") from exc
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path} is corrupt ({exc}): delete it and rerun") from exc
