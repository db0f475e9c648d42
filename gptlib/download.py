"""Opt-in download of OpenAI's GPT-2 weights: pinned source, sha256-checked, cached.

Nothing here touches the network unless you allow it, with ``allow_download=True`` or
``GPTLIB_ALLOW_DOWNLOAD=1``; the course never downloads on its default path (day 6 shows how).

The files are the ``model.safetensors`` that Hugging Face hosts for OpenAI's four GPT-2 sizes
(``openai-community/gpt2``, ``-medium``, ``-large``, ``-xl``), each at a pinned commit.
``huggingface_hub.hf_hub_download`` does the transfer (retries, resume, ``HF_ENDPOINT`` mirrors,
``HF_TOKEN``, progress bar); what is ours is the trust: a file is used only if its sha256 is the pinned
commit's, checked at every use, and the cached file changes only by ``os.replace`` with a download that
passed that check, so a file that fails it is never loaded and never deleted.

The pinned commit's sha256: for 124M and 1558M it is pinned in ``GPT2_FILES`` (published by independent
projects that verify the same file at the same commit); for 355M and 774M it is read from the commit's
Git LFS pointer before downloading (Git LFS names a file by its sha256, and the commit fixes the pointer)
and recorded beside the file (``<name>.sha256``), to check it offline. ``expected_sha256=`` replaces it
when you have the hash from elsewhere.

Cache: ``GPTLIB_GPT2_DIR``, else ``~/.cache/gptlib/gpt2`` (``XDG_CACHE_HOME`` honoured). Server:
``HF_ENDPOINT``, else https://huggingface.co, read at every call and passed to huggingface_hub
explicitly (it reads the variable once, at import).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .files import user_cache_dir, write_atomically

__all__ = ["GPT2File", "GPT2_FILES", "DownloadError", "downloads_allowed", "gpt2_cache_dir", "gpt2_weights_path",
           "hub_endpoint", "hub_lfs_sha256", "load_gpt2", "sha256_file"]

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

    @property
    def url(self) -> str:
        """Where the file is fetched from (``$HF_ENDPOINT`` or huggingface.co), for messages."""
        return f"{hub_endpoint()}/{self.repo}/resolve/{self.revision}/{WEIGHTS_FILE}"

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
# 355M and 774M: no independently published hash was found; see the module docstring, point 4.
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
    return user_cache_dir("gpt2")


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


@contextmanager
def _hub(what: str):
    """Around every call into huggingface_hub: any failure (not installed, HTTP error, refused connection,
    short transfer, ``HF_HUB_OFFLINE=1``) one DownloadError line."""
    try:
        yield
    except Exception as exc:  # the network boundary (a missing huggingface_hub: "No module named ...")
        while exc.__cause__ is not None and "local cache" in str(exc):  # hf's wrapper around the real reason
            exc = exc.__cause__
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise DownloadError(f"{what} failed: {type(exc).__name__}: {reason}; nothing in the cache was changed") \
            from None


def hub_lfs_sha256(size: str, *, endpoint: str | None = None) -> str:
    """The sha256 of ``model.safetensors`` in the Git LFS pointer at the pinned commit (no download)."""
    spec = _spec(size)
    with _hub(f"reading the sha256 of GPT-2 {spec.size} from {hub_endpoint(endpoint)}"):
        from huggingface_hub import HfApi

        entries = HfApi(endpoint=hub_endpoint(endpoint)).get_paths_info(spec.repo, [WEIGHTS_FILE],
                                                                         revision=spec.revision)
    oid = next((str(e.lfs.sha256) for e in entries if e.path == WEIGHTS_FILE and getattr(e, "lfs", None)), "").lower()
    if not _SHA256.fullmatch(oid):
        raise DownloadError(f"no sha256 for {spec.repo}'s weights at {hub_endpoint(endpoint)}: pass expected_sha256")
    return oid


def _recorded_sha256(target: Path) -> str | None:
    """The pointer's hash recorded beside ``target`` when it was downloaded; None if absent or unreadable."""
    try:
        recorded = str(json.loads(target.with_name(target.name + ".sha256").read_text())["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return recorded if _SHA256.fullmatch(recorded) else None


def gpt2_weights_path(size: str = "124M", *, allow_download: bool | None = None,
                      cache_dir: str | os.PathLike | None = None, expected_sha256: str | None = None,
                      endpoint: str | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """The path of a verified ``model.safetensors`` for GPT-2 ``size`` ("124M", "355M", "774M", "1558M",
    or "gpt2", "gpt2-medium"...), downloaded only if allowed (``allow_download``, else
    ``GPTLIB_ALLOW_DOWNLOAD``). ``cache_dir``: see ``gpt2_cache_dir``; ``expected_sha256``: replaces the
    pinned commit's hash; ``endpoint``: the Hub server; ``timeout``: seconds for its first answer.

    Raises ``DownloadError`` when no verified file can be had (see the module docstring).
    """
    spec = _spec(size)
    if expected_sha256 is not None and not _SHA256.fullmatch(str(expected_sha256).lower()):
        raise ValueError(f"expected_sha256 must be 64 hex digits, got {expected_sha256!r}")
    given = expected_sha256.lower() if expected_sha256 else spec.sha256  # None: the commit's LFS pointer says
    target = gpt2_cache_dir(cache_dir) / spec.filename
    actual = sha256_file(target) if target.is_file() else None
    if actual is not None and actual == (given or _recorded_sha256(target)):
        return target
    if not downloads_allowed(allow_download):
        reason = (f"GPT-2 {spec.size} is not in the cache ({target})" if actual is None else
                  f"the cached {target} does not match its expected sha256, so it is not used (it was left in "
                  "place: only a verified download replaces it)")
        size_mb = f" ({spec.n_bytes / 1e6:.0f} MB)" if spec.n_bytes else ""
        raise DownloadError(f"{reason}; downloads are off: set {ALLOW_ENV}=1 (or pass allow_download=True, or "
                            f"--allow-download on the command line) to fetch it{size_mb} from {hub_endpoint(endpoint)}")
    expected = given or hub_lfs_sha256(spec.size, endpoint=endpoint)
    if actual != expected:
        _download(spec, target, expected, endpoint, progress, timeout)
    if not spec.sha256:  # record the hash for the next, perhaps offline, use
        record = json.dumps({"sha256": expected, "repo": spec.repo, "revision": spec.revision, "file": WEIGHTS_FILE})
        write_atomically(target.with_name(target.name + ".sha256"), lambda f: f.write(record.encode()))
    return target


def _download(spec: GPT2File, target: Path, expected: str, endpoint: str | None, progress: bool,
              timeout: float) -> None:
    """Fetch ``spec``'s file into a staging folder, and move it to ``target`` only if it hashes to ``expected``."""
    staging = target.parent / f".download-{spec.size}"
    shutil.rmtree(staging, ignore_errors=True)  # a leftover of an interrupted run: start clean
    try:
        with _hub(f"download of GPT-2 {spec.size} from {hub_endpoint(endpoint)}"):
            from huggingface_hub import hf_hub_download
            from tqdm.auto import tqdm

            staged = hf_hub_download(spec.repo, WEIGHTS_FILE, revision=spec.revision, local_dir=staging,
                                     endpoint=hub_endpoint(endpoint), etag_timeout=timeout, library_name="gptlib",
                                     tqdm_class=None if progress else partial(tqdm, disable=True))
        if (got := sha256_file(staged)) != expected:
            raise DownloadError(f"GPT-2 {spec.size} came with sha256 {got[:12]}…, not {expected[:12]}…: refusing to "
                                "use it (corrupt transfer or wrong file); nothing in the cache was changed")
        os.replace(staged, target)  # on the same disk: a rename, atomic
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_gpt2(size: str = "124M", *, device=None, cfg=None, **download_kwargs):
    """A ``GPTModel`` holding OpenAI's GPT-2 ``size`` weights (verified; downloaded only if allowed), in
    eval mode. ``cfg`` overrides the preset config (the tests load a small stand-in checkpoint with it);
    ``download_kwargs`` go to ``gpt2_weights_path``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .model import GPTConfig, GPTModel
    from .weights import load_hf_gpt2

    spec = _spec(size)
    path = gpt2_weights_path(spec.size, **download_kwargs)
    try:
        state_dict = load_file(str(path))
    except SafetensorError as exc:  # only a hash given or recorded by hand can let such a file through
        raise DownloadError(f"{path} is not a safetensors file ({exc}): check its sha256, download it again") from None
    model = GPTModel(cfg or GPTConfig.preset(spec.preset, drop_rate=0.0))
    load_hf_gpt2(model, state_dict)
    return (model.to(device) if device is not None else model).eval()
