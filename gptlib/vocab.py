"""Offline tiktoken vocabularies (GPT-2, cl100k_base, o200k_base) from pip-installed files.

``tiktoken.get_encoding`` downloads its BPE files on first use and caches them in
``TIKTOKEN_CACHE_DIR`` under the name ``sha1(url)``. We fill that cache from packaged,
sha256-verified copies, so tiktoken's own code (its regex, its special tokens) runs
unchanged and never needs the network. ``import gptlib`` does this once; afterwards the
usual ``tiktoken.get_encoding("gpt2")`` works offline as written.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .assets import AssetError, read_asset
from .files import write_atomically

_BLOB = "https://openaipublic.blob.core.windows.net"

# tiktoken's download URL for each file -> the packaged asset that holds the same bytes.
_URL_TO_ASSET: dict[str, str] = {
    f"{_BLOB}/gpt-2/encodings/main/vocab.bpe": "gpt2/vocab.bpe",
    f"{_BLOB}/gpt-2/encodings/main/encoder.json": "gpt2/encoder.json",
    f"{_BLOB}/encodings/cl100k_base.tiktoken": "cl100k_base.tiktoken",
    f"{_BLOB}/encodings/o200k_base.tiktoken": "o200k_base.tiktoken",
}

ENCODING_FILES: dict[str, tuple[str, ...]] = {
    "gpt2": ("gpt2/vocab.bpe", "gpt2/encoder.json"),
    "cl100k_base": ("cl100k_base.tiktoken",),
    "o200k_base": ("o200k_base.tiktoken",),
}

DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gptlib" / "tiktoken"


def tiktoken_cache_dir() -> Path:
    """The folder tiktoken reads its cache from: ``TIKTOKEN_CACHE_DIR`` if set, else ours."""
    return Path(os.environ.get("TIKTOKEN_CACHE_DIR") or DEFAULT_CACHE_DIR)


def use_offline_vocabularies(*, verify: bool = False) -> Path:
    """Point tiktoken at a cache filled from packaged files; return that folder.

    Cheap enough to run on ``import gptlib``: a file already in the cache is left alone
    unless ``verify`` is true (tiktoken re-checks every file's sha256 when it loads it,
    and ``get_encoding`` below verifies before it hands over). Files whose package is
    not installed are skipped here and reported by ``get_encoding``.
    """
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(DEFAULT_CACHE_DIR))
    cache = tiktoken_cache_dir()
    for url, asset in _URL_TO_ASSET.items():
        target = cache / hashlib.sha1(url.encode()).hexdigest()
        if target.is_file() and not (verify and not _matches(target, asset)):
            continue
        try:
            data = read_asset(asset)
            write_atomically(target, lambda f: f.write(data))
        except (AssetError, OSError):
            if verify:
                raise
    return cache


def get_encoding(name: str):
    """A ``tiktoken.Encoding`` for ``gpt2``, ``cl100k_base`` or ``o200k_base``, with no network.

    Raises ``AssetError`` naming the pip package to install when a file is missing or
    corrupt, instead of letting tiktoken try to download it.
    """
    import tiktoken

    if name not in ENCODING_FILES:
        raise ValueError(f"no offline vocabulary for {name!r}; choose one of {', '.join(ENCODING_FILES)}")
    cache = use_offline_vocabularies()
    for url, asset in _URL_TO_ASSET.items():
        if asset in ENCODING_FILES[name]:
            target = cache / hashlib.sha1(url.encode()).hexdigest()
            if not _matches(target, asset):
                data = read_asset(asset)  # raises AssetError with the fix
                write_atomically(target, lambda f: f.write(data))
    return tiktoken.get_encoding(name)


def _matches(path: Path, asset: str) -> bool:
    from .assets import ASSETS

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == ASSETS[asset].sha256
    except OSError:
        return False
