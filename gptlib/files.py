"""Files: where the course keeps what it caches, and writing so that a crash never leaves half a file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["user_cache_dir", "write_atomically"]


def user_cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/gptlib/<parts>``, or ``~/.cache/gptlib/<parts>``.

    An empty ``XDG_CACHE_HOME`` counts as unset, as the XDG specification says (otherwise the
    cache would land in the current folder).
    """
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root).joinpath("gptlib", *parts)


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then ``os.replace`` it into place.

    ``os.replace`` is atomic: readers see the old file or the new one, never a torn one, so an
    interrupted save (Ctrl-C, a full disk, a crash) keeps the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
