"""Opt-in download of OpenAI's GPT-2 weights: pinned source, sha256-checked, cached.

Nothing here touches the network unless you allow it, with ``allow_download=True`` or the
environment variable ``GPTLIB_ALLOW_DOWNLOAD=1``. The course never downloads on its default
path; day 6 shows how to turn this on.

Source: the ``model.safetensors`` files that Hugging Face hosts for OpenAI's four GPT-2
checkpoints (``openai-community/gpt2``, ``-medium``, ``-large``, ``-xl``), fetched from a
``resolve/<revision>`` URL. A file is trusted only when its sha256 equals the pinned value:

- it is written to ``<name>.part`` and renamed into the cache only after the hash matches,
  so an interrupted or corrupted download is never left under the final name;
- a cached file is re-hashed every time it is used; a mismatch (corruption, truncation,
  someone else's file) deletes it and downloads it again (when allowed), and it is never
  loaded.

Where the pinned hash is not known (see ``GPT2_FILES``), the download refuses unless you
pass ``expected_sha256`` yourself: unverified weights are never loaded.

Cache folder: ``GPTLIB_GPT2_DIR`` if set, else ``~/.cache/gptlib/gpt2`` (``XDG_CACHE_HOME``
is honoured).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "GPT2File",
    "GPT2_FILES",
    "DownloadError",
    "downloads_allowed",
    "gpt2_cache_dir",
    "gpt2_weights_path",
    "load_gpt2",
    "sha256_file",
]

ALLOW_ENV = "GPTLIB_ALLOW_DOWNLOAD"
CACHE_ENV = "GPTLIB_GPT2_DIR"


@dataclass(frozen=True)
class GPT2File:
    """One published GPT-2 checkpoint: where it lives, what it must hash to, which config it fits."""

    size: str  # OpenAI's name: 124M, 355M, 774M, 1558M
    repo: str  # Hugging Face repository
    revision: str  # a commit of that repository ("main" where no commit is pinned)
    preset: str  # gptlib.model.GPTConfig preset with the same shapes
    sha256: str | None  # of model.safetensors; None: not pinned, the caller must supply one
    n_bytes: int | None  # expected file size, shown before downloading

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo}/resolve/{self.revision}/model.safetensors"

    @property
    def filename(self) -> str:
        return f"gpt2-{self.size}.safetensors"


# The 124M hash and size are those of the Git LFS object of openai-community/gpt2's
# model.safetensors at commit 607a30d783dfa663caf39e06633721c8d4cfcd7e
# (sha256 248dfc39…d3a707, 548,105,171 bytes). It is the blob name in every Hugging Face cache
# (~/.cache/huggingface/hub/models--gpt2/blobs/248dfc39…) and is pinned, with that revision,
# by several independent public projects that verify the file before use.
# For the larger checkpoints we found no published hash we could cross-check, so none is
# pinned: the download refuses unless you pass expected_sha256 (take it from the file page
# on huggingface.co, which shows the LFS "SHA256").
GPT2_FILES: dict[str, GPT2File] = {
    "124M": GPT2File("124M", "openai-community/gpt2", "607a30d783dfa663caf39e06633721c8d4cfcd7e",
                     "gpt2-small", "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707",
                     548_105_171),
    "355M": GPT2File("355M", "openai-community/gpt2-medium", "main", "gpt2-medium", None, None),
    "774M": GPT2File("774M", "openai-community/gpt2-large", "main", "gpt2-large", None, None),
    "1558M": GPT2File("1558M", "openai-community/gpt2-xl", "main", "gpt2-xl", None, None),
}
_ALIASES = {"gpt2": "124M", "gpt2-small": "124M", "small": "124M", "gpt2-medium": "355M", "medium": "355M",
            "gpt2-large": "774M", "large": "774M", "gpt2-xl": "1558M", "xl": "1558M"}


class DownloadError(RuntimeError):
    """A GPT-2 checkpoint could not be obtained as a verified file."""


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """``allow_download`` when given, else whether ``GPTLIB_ALLOW_DOWNLOAD`` is 1/true/yes."""
    if allow_download is not None:
        return bool(allow_download)
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def gpt2_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where checkpoints are kept: ``cache_dir``, else ``$GPTLIB_GPT2_DIR``, else ``~/.cache/gptlib/gpt2``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gptlib" / "gpt2"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _spec(size: str) -> GPT2File:
    key = _ALIASES.get(size, size)
    if key not in GPT2_FILES:
        raise ValueError(f"unknown GPT-2 size {size!r}; choose one of {', '.join(GPT2_FILES)}")
    return GPT2_FILES[key]


def gpt2_weights_path(size: str = "124M", *, allow_download: bool | None = None,
                      cache_dir: str | os.PathLike | None = None, url: str | None = None,
                      expected_sha256: str | None = None, progress: bool = True,
                      timeout: float = 60.0) -> Path:
    """The path of a verified ``model.safetensors`` for GPT-2 ``size``, downloading it if allowed.

    Args:
        size: "124M", "355M", "774M" or "1558M" (or "gpt2", "gpt2-medium", ...).
        allow_download: permit network access; default: ``GPTLIB_ALLOW_DOWNLOAD=1``.
        cache_dir: where to keep the file (default: see ``gpt2_cache_dir``).
        url: download from here instead of Hugging Face (a mirror; the tests use a local server).
        expected_sha256: the hash to verify against; required for sizes without a pinned hash,
            and overrides the pinned one (for a mirror of another file).
        progress: show a progress bar while downloading.

    Raises ``DownloadError`` when the file is missing and downloads are off, when the
    download fails or is incomplete, and when the bytes do not hash to the expected value.
    """
    spec = _spec(size)
    expected = (expected_sha256 or spec.sha256 or "").lower() or None
    if expected is None:
        raise DownloadError(
            f"no sha256 is pinned for GPT-2 {spec.size} ({spec.repo}), and gptlib never loads "
            f"unverified weights: pass expected_sha256=... (the LFS SHA256 shown on "
            f"https://huggingface.co/{spec.repo}/blob/{spec.revision}/model.safetensors)")
    folder = gpt2_cache_dir(cache_dir)
    target = folder / spec.filename
    if target.is_file():
        if sha256_file(target) == expected:
            return target
        target.unlink()  # corrupted, truncated or another file: never load it
        reason = f"the cached {spec.filename} did not match its sha256 and was deleted"
    else:
        reason = f"GPT-2 {spec.size} is not in the cache ({spec.filename})"
    if not downloads_allowed(allow_download):
        mb = f" ({spec.n_bytes / 1e6:.0f} MB)" if spec.n_bytes else ""
        raise DownloadError(f"{reason}; downloads are off: set {ALLOW_ENV}=1 (or pass allow_download=True, "
                            f"or --allow-download on the command line) to fetch it{mb} from {url or spec.url}")
    _download(url or spec.url, target, expected, progress=progress, timeout=timeout)
    return target


def _download(url: str, target: Path, expected_sha256: str, *, progress: bool, timeout: float) -> None:
    """Fetch ``url`` to ``target`` via ``target.part``; rename only when complete and verified."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    part.unlink(missing_ok=True)  # a leftover from an interrupted run: start again
    digest = hashlib.sha256()
    received = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "gptlib"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            bar = _progress_bar(total, target.name) if progress else None
            try:
                while block := response.read(1 << 20):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
        if total is not None and received != total:
            raise DownloadError(f"incomplete download from {url}: got {received:,} of {total:,} bytes; run again")
        actual = digest.hexdigest()
        if actual != expected_sha256:
            raise DownloadError(f"downloaded file from {url} has sha256 {actual[:12]}…, expected "
                                f"{expected_sha256[:12]}…: refusing to use it (corrupt transfer or wrong file)")
        os.replace(part, target)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        # HTTP errors, refused connections, timeouts, a server that hangs up mid-file
        part.unlink(missing_ok=True)
        raise DownloadError(f"download from {url} failed after {received:,} bytes: {exc!r}") from None


def _progress_bar(total: int | None, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def load_gpt2(size: str = "124M", *, device=None, cfg=None, **download_kwargs):
    """A ``GPTModel`` holding OpenAI's GPT-2 ``size`` weights (verified; downloaded only if allowed).

    ``cfg`` overrides the preset config (the tests load a small stand-in checkpoint with it).
    ``download_kwargs`` go to ``gpt2_weights_path`` (``allow_download``, ``cache_dir``, ``url``,
    ``expected_sha256``, ``progress``). The model is returned in eval mode.
    """
    from safetensors.torch import load_file

    from .model import GPTConfig, GPTModel
    from .weights import load_hf_gpt2

    spec = _spec(size)
    path = gpt2_weights_path(spec.size, **download_kwargs)
    if cfg is None:
        cfg = GPTConfig.preset(spec.preset, drop_rate=0.0)
    model = GPTModel(cfg)
    load_hf_gpt2(model, load_file(str(path)))
    if device is not None:
        model.to(device)
    return model.eval()
