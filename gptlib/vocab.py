"""Offline vocabularies: tiktoken's (GPT-2, cl100k_base, o200k_base), and GPT-2's files decoded for our BPE.

``tiktoken.get_encoding`` downloads its BPE files on first use and caches them in
``TIKTOKEN_CACHE_DIR`` under the name ``sha1(url)``. We fill that cache from packaged,
sha256-verified copies, so tiktoken's own code (its regex, its special tokens) runs
unchanged and never needs the network. ``import gptlib`` does this once; afterwards the
usual ``tiktoken.get_encoding("gpt2")`` works offline as written.

The same two GPT-2 files, ``vocab.bpe`` and ``encoder.json``, are OpenAI's original GPT-2
vocabulary. :func:`gpt2_vocabulary` decodes them into the merge table that our hand-written
``BPETokenizer.from_gpt2`` runs on, with no tiktoken involved.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .assets import AssetError, read_asset
from .files import user_cache_dir, write_atomically

__all__ = ["ENCODING_FILES", "get_encoding", "gpt2_vocabulary", "tiktoken_cache_dir", "use_offline_vocabularies"]

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


def tiktoken_cache_dir() -> Path:
    """The folder tiktoken reads its cache from: ``TIKTOKEN_CACHE_DIR`` if set, else ``~/.cache/gptlib/tiktoken``.

    Read from the environment at each call, not at import, so a later change of
    ``TIKTOKEN_CACHE_DIR`` or ``XDG_CACHE_HOME`` is seen (see ``files.user_cache_dir``).
    """
    return Path(os.environ.get("TIKTOKEN_CACHE_DIR") or user_cache_dir("tiktoken"))


def use_offline_vocabularies(*, verify: bool = False) -> Path:
    """Point tiktoken at a cache filled from packaged files; return that folder.

    Cheap enough to run on ``import gptlib``: a file already in the cache is left alone
    unless ``verify`` is true (tiktoken re-checks every file's sha256 when it loads it,
    and ``get_encoding`` below verifies before it hands over). Files whose package is
    not installed are skipped here and reported by ``get_encoding``.
    """
    cache = tiktoken_cache_dir()
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)  # what tiktoken reads (set, not setdefault: "" turns its cache off)
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


def gpt2_vocabulary() -> tuple[dict[tuple[int, int], int], list[int], dict[str, int]]:
    """OpenAI's GPT-2 vocabulary as ``(merges, byte_ids, special_tokens)``, what ``BPETokenizer`` takes.

    ``vocab.bpe`` lists the 50,000 merges in the order they were learned, as pairs of token
    strings; ``encoder.json`` maps every token string to its id. Both spell each byte as a
    printable character (:func:`_gpt2_bytes_to_unicode`), which we undo, giving

    - ``merges``: ``(left id, right id) -> new id``;
    - ``byte_ids``: the id of each byte value 0..255 (GPT-2 numbers them in its own order);
    - ``special_tokens``: ``{"<|endoftext|>": 50256}``, the one id that no byte or merge makes.
    """
    token_to_id: dict[str, int] = json.loads(read_asset("gpt2/encoder.json"))
    lines = read_asset("gpt2/vocab.bpe").decode("utf-8").splitlines()
    char_to_byte = {char: byte for byte, char in _gpt2_bytes_to_unicode().items()}

    def to_bytes(token: str) -> bytes:
        return bytes(char_to_byte[c] for c in token)

    id_of_bytes = {to_bytes(token): i for token, i in token_to_id.items()}
    byte_ids = [id_of_bytes[bytes([b])] for b in range(256)]
    merges: dict[tuple[int, int], int] = {}
    for line in lines[1:]:  # line 0 is "#version: 0.2"
        if line:
            left, right = line.split(" ")
            merges[id_of_bytes[to_bytes(left)], id_of_bytes[to_bytes(right)]] = id_of_bytes[to_bytes(left + right)]
    made = set(byte_ids) | set(merges.values())
    special_tokens = {token: i for token, i in token_to_id.items() if i not in made}
    return merges, byte_ids, special_tokens


def _gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, used to store bytes in its JSON and text files.

    Printable bytes stand for themselves; the other 68 (controls, space, ...) are shifted to
    the characters from U+0100 on, so that, e.g., the space byte is written "Ġ".
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = (b for b in range(256) if b not in table)
    table.update({b: chr(256 + n) for n, b in enumerate(shifted)})
    return table


def _matches(path: Path, asset: str) -> bool:
    from .assets import ASSETS

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == ASSETS[asset].sha256
    except OSError:
        return False
