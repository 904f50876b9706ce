"""Atomic file writes and hashing (stdlib only).

Checkpoints, engines, manifests and logs are written to a temporary file in the same
directory, fsynced, then renamed over the target, so a crash never leaves a half-written
artifact and an existing file is replaced only by a complete new one.

Permissions are what ``open()`` would give: a new file gets ``0666 & ~umask`` (0644 under the usual umask 022, so
the ``edge`` service user can read engines another user built; 0600 under 077), a replaced file keeps its mode.
(``tempfile.mkstemp`` alone creates 0600 whatever the umask.)
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``); elsewhere by
    setting and restoring it under a lock."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _mode_for(target: Path) -> int:
    """An existing target's permission bits, else what a new file gets: 0666 minus the umask."""
    try:
        return stat.S_IMODE(os.stat(str(target)).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    if "w" not in mode:
        raise ValueError("atomic_open is for writing; got mode %r" % mode)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", suffix=".tmp", dir=str(target.parent))
    try:
        os.fchmod(fd, _mode_for(target))  # mkstemp made it 0600
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
