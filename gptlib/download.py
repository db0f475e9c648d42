"""Opt-in download of OpenAI's GPT-2 weights: pinned source, sha256-checked, cached.

Nothing here touches the network unless you allow it, with ``allow_download=True`` or the
environment variable ``GPTLIB_ALLOW_DOWNLOAD=1``. The course never downloads on its default
path; day 6 shows how to turn this on.

Source: the ``model.safetensors`` files that Hugging Face hosts for OpenAI's four GPT-2
checkpoints (``openai-community/gpt2``, ``-medium``, ``-large``, ``-xl``), each fetched from a
``resolve/<commit>`` URL of a pinned commit, so the bytes cannot change under us. A file is
trusted only when its sha256 equals the expected value:

- it is written to ``<name>.part`` and renamed into the cache only after the hash matches,
  so an interrupted or corrupted download is never left under the final name;
- a cached file is re-hashed every time it is used; a mismatch (corruption, truncation,
  someone else's file) deletes it and downloads it again (when allowed), and it is never
  loaded.

Where the expected sha256 comes from, strongest first:

1. ``expected_sha256=...`` passed by the caller;
2. the value pinned in ``GPT2_FILES`` (124M and 1558M: published by several independent
   projects that verify the same file at the same commit);
3. for 355M and 774M, where we found no independent publication, the Git LFS pointer of
   ``model.safetensors`` at the pinned commit, read from the Hub's ``paths-info`` API before
   downloading. Git LFS names a file by its sha256, and a commit fixes its pointer, so this
   catches every corrupt or partial transfer; it does trust the Hub's metadata, as
   ``huggingface_hub`` does. The hash is recorded beside the cached file
   (``<name>.sha256``) so later, offline uses verify against it.

Cache folder: ``GPTLIB_GPT2_DIR`` if set, else ``~/.cache/gptlib/gpt2`` (``XDG_CACHE_HOME``
is honoured). Server: ``HF_ENDPOINT`` if set (a mirror), else ``https://huggingface.co``.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .files import write_atomically

__all__ = [
    "GPT2File",
    "GPT2_FILES",
    "DownloadError",
    "downloads_allowed",
    "gpt2_cache_dir",
    "gpt2_weights_path",
    "hub_endpoint",
    "hub_lfs_sha256",
    "load_gpt2",
    "sha256_file",
]

ALLOW_ENV = "GPTLIB_ALLOW_DOWNLOAD"
CACHE_ENV = "GPTLIB_GPT2_DIR"
ENDPOINT_ENV = "HF_ENDPOINT"  # the variable huggingface_hub reads, so one setting serves both
DEFAULT_ENDPOINT = "https://huggingface.co"
WEIGHTS_FILE = "model.safetensors"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class GPT2File:
    """One published GPT-2 checkpoint: where it lives, what it must hash to, which config it fits."""

    size: str  # OpenAI's name: 124M, 355M, 774M, 1558M
    repo: str  # Hugging Face repository
    revision: str  # the pinned commit of that repository
    preset: str  # gptlib.model.GPTConfig preset with the same shapes
    sha256: str | None  # of model.safetensors; None: read from the Hub's LFS pointer at `revision`
    n_bytes: int | None  # exact file size where known, shown before downloading

    def file_url(self, endpoint: str | None = None) -> str:
        return f"{hub_endpoint(endpoint)}/{self.repo}/resolve/{self.revision}/{WEIGHTS_FILE}"

    def paths_info_url(self, endpoint: str | None = None) -> str:
        return f"{hub_endpoint(endpoint)}/api/models/{self.repo}/paths-info/{self.revision}"

    @property
    def url(self) -> str:
        return self.file_url()

    @property
    def filename(self) -> str:
        return f"gpt2-{self.size}.safetensors"


# Commits: the ones `from_pretrained` resolved for each repository in many independent public
# projects that pin their revisions (the 124M one since 2024).
# 124M: sha256 and size of the Git LFS object of model.safetensors at 607a30d…; it is the blob
# name in every Hugging Face cache (models--gpt2/blobs/248dfc39…) and is pinned, with that
# commit, by several independent public projects that verify the file before use.
# 1558M: sha256 at 15ea56d…, pinned and verified the same way by independent projects
# (5.99 GiB; the exact byte count was not published, so none is pinned).
# 355M and 774M: no independently published hash was found; see the module docstring, point 3.
GPT2_FILES: dict[str, GPT2File] = {
    "124M": GPT2File("124M", "openai-community/gpt2", "607a30d783dfa663caf39e06633721c8d4cfcd7e",
                     "gpt2-small", "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707",
                     548_105_171),
    "355M": GPT2File("355M", "openai-community/gpt2-medium", "6dcaa7a952f72f9298047fd5137cd6e4f05f41da",
                     "gpt2-medium", None, None),
    "774M": GPT2File("774M", "openai-community/gpt2-large", "32b71b12589c2f8d625668d2335a01cac3249519",
                     "gpt2-large", None, None),
    "1558M": GPT2File("1558M", "openai-community/gpt2-xl", "15ea56dee5df4983c59b2538573817e1667135e2",
                      "gpt2-xl", "0f8b28eb05a8075f48b61b6f35332978c74fc7763fa9fb4051a1c30511736a6a", None),
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


def hub_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else ``$HF_ENDPOINT`` (a mirror), else ``https://huggingface.co``; no trailing slash."""
    return (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")


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


def hub_lfs_sha256(size: str, *, endpoint: str | None = None, timeout: float = 60.0) -> str:
    """The sha256 that the Hub's Git LFS pointer gives ``model.safetensors`` at the pinned commit.

    One small POST to ``/api/models/<repo>/paths-info/<commit>`` (what ``huggingface_hub``'s
    ``get_paths_info`` sends); the answer lists the file with ``lfs: {oid, size}``, where ``oid``
    is the sha256 of the file's bytes.
    """
    spec = _spec(size)
    api = spec.paths_info_url(endpoint)
    body = urllib.parse.urlencode({"paths": WEIGHTS_FILE}).encode()
    request = urllib.request.Request(api, data=body, method="POST", headers={
        "User-Agent": "gptlib", "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            entries = json.load(response)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise DownloadError(f"could not read the sha256 of GPT-2 {spec.size} from {api}: {exc!r}; "
                            f"retry, or pass expected_sha256=...") from None
    entry = next((e for e in entries if isinstance(e, dict) and e.get("path") == WEIGHTS_FILE), None) \
        if isinstance(entries, list) else None
    oid = str(((entry or {}).get("lfs") or {}).get("oid", "")).lower()
    if not _SHA256.fullmatch(oid):
        raise DownloadError(f"{api} did not report a Git LFS sha256 for {WEIGHTS_FILE}; "
                            f"pass expected_sha256=... (the SHA256 shown on its file page)")
    return oid


def _record_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _read_record(target: Path) -> str | None:
    """The sha256 recorded when ``target`` was downloaded (sizes without a pinned hash)."""
    try:
        recorded = json.loads(_record_path(target).read_text())["sha256"].lower()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return recorded if _SHA256.fullmatch(recorded) else None


def _write_record(target: Path, sha256: str, spec: GPT2File) -> None:
    record = {"sha256": sha256, "repo": spec.repo, "revision": spec.revision, "file": WEIGHTS_FILE}
    write_atomically(_record_path(target), lambda f: f.write(json.dumps(record, indent=1).encode()))


def gpt2_weights_path(size: str = "124M", *, allow_download: bool | None = None,
                      cache_dir: str | os.PathLike | None = None, url: str | None = None,
                      expected_sha256: str | None = None, endpoint: str | None = None,
                      progress: bool = True, timeout: float = 60.0) -> Path:
    """The path of a verified ``model.safetensors`` for GPT-2 ``size``, downloading it if allowed.

    Args:
        size: "124M", "355M", "774M" or "1558M" (or "gpt2", "gpt2-medium", ...).
        allow_download: permit network access; default: ``GPTLIB_ALLOW_DOWNLOAD=1``.
        cache_dir: where to keep the file (default: see ``gpt2_cache_dir``).
        url: download the file from here instead (a mirror; the tests use a local server).
        expected_sha256: the hash to verify against; overrides the pinned or recorded one.
        endpoint: the Hub server (default: ``$HF_ENDPOINT``, else https://huggingface.co).
        progress: show a progress bar while downloading.

    Raises ``DownloadError`` when the file is missing and downloads are off, when the
    download fails or is incomplete, and when the bytes do not hash to the expected value.
    """
    spec = _spec(size)
    if expected_sha256 is not None and not _SHA256.fullmatch(expected_sha256.lower()):
        raise ValueError(f"expected_sha256 must be 64 hex digits, got {expected_sha256!r}")
    target = gpt2_cache_dir(cache_dir) / spec.filename
    known = (expected_sha256 or spec.sha256 or "").lower() or None  # never needs the network
    expected = known or _read_record(target)
    if target.is_file() and expected is not None:
        if sha256_file(target) == expected:
            return target
        target.unlink()  # corrupted, truncated or another file: never load it
        _record_path(target).unlink(missing_ok=True)  # and re-read the hash: the record may be the bad part
        reason = f"the cached {spec.filename} did not match its sha256 and was deleted"
    elif target.is_file():
        reason = f"the cached {spec.filename} has no recorded sha256 to check it against"
    else:
        reason = f"GPT-2 {spec.size} is not in the cache ({spec.filename})"
    if not downloads_allowed(allow_download):
        mb = f" ({spec.n_bytes / 1e6:.0f} MB)" if spec.n_bytes else ""
        raise DownloadError(f"{reason}; downloads are off: set {ALLOW_ENV}=1 (or pass allow_download=True, "
                            f"or --allow-download on the command line) to fetch it{mb} from "
                            f"{url or spec.file_url(endpoint)}")
    expected = known or hub_lfs_sha256(spec.size, endpoint=endpoint, timeout=timeout)
    if spec.sha256 is None:
        _write_record(target, expected, spec)  # before the file: a later run can always check it
    if target.is_file() and sha256_file(target) == expected:  # placed by hand, now verified
        return target
    target.unlink(missing_ok=True)
    _download(url or spec.file_url(endpoint), target, expected, progress=progress, timeout=timeout)
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
    ``expected_sha256``, ``endpoint``, ``progress``). The model is returned in eval mode.
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
