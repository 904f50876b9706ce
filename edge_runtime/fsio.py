"""Atomic file writes and hashing (stdlib only).

Checkpoints, engines, manifests and logs are written to a temporary file in the same
directory, fsynced, then renamed over the target, so a crash never leaves a half-written
artifact and an existing file is replaced only by a complete new one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    if "w" not in mode:
        raise ValueError("atomic_open is for writing; got mode %r" % mode)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, str(target))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(str(directory), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text_atomic(path: PathLike, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_json_atomic(path: PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_writable(path: PathLike, what: str, directory: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written: one line naming ``what`` (the flag or key,
    e.g. ``--out``), exit 2. ``directory``: ``path`` is a folder to create or fill; else a file to create or
    replace. Checks the nearest existing ancestor: it must be a folder this process may write (a read-only
    place, a file where a folder belongs, a folder where a file belongs are refused). Creates nothing."""
    from .errors import EdgeRuntimeError

    p = Path(path)
    if p.exists():
        if directory and not p.is_dir():
            raise EdgeRuntimeError("%s %s: exists and is not a folder; give a folder path" % (what, p))
        if not directory and p.is_dir():
            raise EdgeRuntimeError("%s %s: is a folder; give a file path (e.g. %s)" % (what, p, p / "out"))
    here = p if directory and p.is_dir() else p.parent
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        raise EdgeRuntimeError("%s %s: cannot be created: %s is a file, not a folder; choose another place"
                               % (what, p, here))
    if not os.access(str(here), os.W_OK | os.X_OK):
        raise EdgeRuntimeError("%s %s: cannot write in %s (read-only or no permission); choose a writable place"
                               % (what, p, here))
    return p
