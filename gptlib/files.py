"""Files: where the course keeps what it caches, and writing so that a crash never leaves half a file."""
from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import stat
import time
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["user_cache_dir", "write_atomically", "remove_stale_temporaries", "WriteError"]

_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
_STALE_AGE_S = 3600  # Windows: a temporary file this old is a dead writer's (see remove_stale_temporaries)
_PROBE_PIDS = os.name != "nt"  # Windows' os.kill(pid, 0) would terminate that process, not probe it


class WriteError(OSError):
    """A file could not be saved: the disk is full, or the folder is read-only. The message says
    which, and that the previous version of the file (if any) is intact."""


def user_cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/gptlib/<parts>``, or ``~/.cache/gptlib/<parts>``.

    As the XDG specification says, an empty or relative ``XDG_CACHE_HOME`` is ignored (else the
    cache would land in the current folder); so is an empty or relative ``HOME``, for the account's
    home folder (else ``HOME=""`` would write ``/.cache``).
    """
    xdg, home = os.environ.get("XDG_CACHE_HOME", ""), os.environ.get("HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg).joinpath("gptlib", *parts)
    if not os.path.isabs(home):
        home = _account_home()
    return Path(home).joinpath(".cache", "gptlib", *parts)


def _account_home() -> str:
    """The home folder of this account, whatever ``HOME`` says; an OSError if there is none."""
    try:
        import pwd  # POSIX

        home = pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):
        home = os.environ.get("USERPROFILE", "")  # Windows
    if not os.path.isabs(home):
        raise OSError("no home folder to keep gptlib's cache in: set XDG_CACHE_HOME (or HOME) to an absolute path")
    return home


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then ``os.replace`` it into place.

    ``os.replace`` is atomic: readers see the old file or the new one, never a torn one, so an
    interrupted save (Ctrl-C, a full disk, a crash) keeps the previous file intact. Temporary
    files left by writers that were killed (``kill -9``: no ``finally`` runs) are removed here,
    at the next save (and by ``load_checkpoint``). The file keeps its permissions (a private
    ``chmod 600`` stays private). A full disk or a read-only folder raises ``WriteError`` saying so.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        in_the_way = exc.errno in (errno.ENOTDIR, errno.EEXIST)  # a file stands where a folder must be
        why = "a part of it is a file" if in_the_way else exc.strerror or exc
        raise WriteError(exc.errno, f"cannot create the folder {path.parent}: {why}; choose a writable folder") from exc
    try:
        remove_stale_temporaries(path)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except Exception as exc:
        explained = _explained(exc, path)
        if explained is exc:
            raise
        raise explained from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _explained(exc: Exception, path: Path) -> Exception:
    """A ``WriteError`` for a full disk or a read-only folder, wherever in the chain its errno hides
    (torch.save turns the ENOSPC of a write into "unexpected pos 12352 vs 12246"); else ``exc``."""
    codes, chain, seen = set(), [], exc
    while seen is not None and seen not in chain:  # (a chain can loop)
        chain.append(seen)
        if isinstance(seen, OSError) and seen.errno is not None:
            codes.add(seen.errno)
        seen = seen.__cause__ or seen.__context__
    kept = f"the last good {path.name} is intact" if path.exists() else "nothing was written"
    if codes & set(_DISK_FULL) or (not isinstance(exc, OSError) and _nearly_full(path.parent)):
        return WriteError(errno.ENOSPC, f"the disk is full: {path} could not be saved ({kept}); "
                                        "free some space, or save to another disk, and run again")
    if codes & set(_NOT_WRITABLE):
        return WriteError(errno.EROFS, f"cannot write {path}: its folder is read-only or not yours ({kept}); "
                                       "choose a folder you can write to")
    return exc


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def remove_stale_temporaries(path: Path) -> None:
    """Delete ``.<name>.tmp-<pid>`` siblings of ``path`` whose writer is gone: a pid that is no
    running process (POSIX), or, on Windows (where probing a pid is not safe), a file over an hour old."""
    pattern = re.compile(re.escape(f".{path.name}.tmp-") + r"(\d+)")
    for sibling in path.parent.glob(glob.escape(f".{path.name}.tmp-") + "*"):
        match = pattern.fullmatch(sibling.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            dead = (not _running(int(match.group(1))) if _PROBE_PIDS
                    else time.time() - sibling.stat().st_mtime > _STALE_AGE_S)
            if dead:
                sibling.unlink()
        except OSError:
            pass  # gone already, or not ours to delete: leave it


def _running(pid: int) -> bool:
    """Whether ``pid`` is a running process (POSIX: signal 0 probes without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a pid we cannot probe: assume alive
    return True
