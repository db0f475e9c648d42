"""Opt-in GPT-2 download: verified, cached, never loads a bad file, never deletes a good one.

Offline: a loopback stand-in for the Hugging Face Hub serves a small random GPT-2 checkpoint in
the same format as OpenAI's model.safetensors, answering what ``huggingface_hub`` asks: HEAD and
GET (with Range) on ``/<repo>/resolve/<commit>/model.safetensors``, and ``paths-info``."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import re
import threading
import types
import urllib.parse

import pytest
import torch

from gptlib import download as dl
from gptlib.download import DownloadError, gpt2_weights_path

VOCAB, CONTEXT, EMB, HEADS, LAYERS = 300, 64, 32, 4, 2
RESOLVE = re.compile(r"/([\w.-]+/[\w.-]+)/resolve/([0-9a-f]{40})/model\.safetensors")
PATHS_INFO = re.compile(r"/api/models/([\w.-]+/[\w.-]+)/paths-info/([0-9a-f]{40})")


def _standin_checkpoint() -> tuple[bytes, object]:
    """A random GPT2LMHeadModel saved like the published file: no "transformer." prefix,
    no lm_head (tied to wte), plus each layer's causal-mask buffer "h.N.attn.bias"."""
    from safetensors.torch import save
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, n_positions=CONTEXT, n_embd=EMB, n_head=HEADS, n_layer=LAYERS,
                        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    hf = GPT2LMHeadModel(config).eval()
    tensors = {k: v.contiguous() for k, v in hf.transformer.state_dict().items()}
    mask = torch.tril(torch.ones(CONTEXT, CONTEXT, dtype=torch.bool)).view(1, 1, CONTEXT, CONTEXT)
    for i in range(LAYERS):
        tensors[f"h.{i}.attn.bias"] = mask.float()
    return save(tensors, metadata={"format": "pt"}), hf


class _Hub:
    """A loopback stand-in for huggingface.co, speaking what ``hf_hub_download`` and
    ``HfApi.get_paths_info`` send. HEAD/GET ``/<repo>/resolve/<commit>/model.safetensors`` answer
    with the headers the Hub sends (``X-Repo-Commit``, ``ETag`` = the LFS sha256, ``Content-Length``)
    and honour ``Range`` (resume); ``POST /api/models/<repo>/paths-info/<commit>`` lists the file with
    ``lfs.oid`` = ``lfs_oid``. ``mode`` makes it misbehave on purpose."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.mode = "ok"  # ok | truncate (never more than half) | truncate-once | corrupt | missing
        self.lfs_oid = hashlib.sha256(payload).hexdigest()
        self.requests: list[str] = []
        self.headers: list[dict] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _resolve(self, head: bool):  # noqa: C901 - one stand-in, one place
                hub.requests.append(f"{self.command} {self.path}")
                hub.headers.append({k.lower(): v for k, v in self.headers.items()})
                match = RESOLVE.fullmatch(self.path)
                if hub.mode == "missing" or not match:
                    self.send_error(404)
                    return
                body = hub.payload
                if hub.mode == "corrupt":
                    body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
                start = int(re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "bytes=0-")).group(1))
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", match.group(2))
                self.send_header("ETag", f'"{hashlib.sha256(hub.payload).hexdigest()}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if head:
                    return
                end = len(body)
                if hub.mode == "truncate" or (hub.mode == "truncate-once" and not start):
                    end = max(start, len(body) // 2)  # then hang up: the client sees a short body
                self.wfile.write(body[start:end])
                self.wfile.flush()
                self.close_connection = True

            def do_HEAD(self):  # noqa: N802 - http.server's name
                self._resolve(head=True)

            def do_GET(self):  # noqa: N802
                self._resolve(head=False)

            def do_POST(self):  # noqa: N802
                hub.requests.append(f"POST {self.path}")
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                if not PATHS_INFO.fullmatch(self.path) or form.get("paths") != ["model.safetensors"]:
                    self.send_error(404)
                    return
                answer = json.dumps([{"type": "file", "path": "model.safetensors", "size": len(hub.payload),
                                      "oid": "0" * 40, "lfs": {"oid": hub.lfs_oid, "size": len(hub.payload),
                                                               "pointerSize": 135}}]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def methods(self) -> list[str]:
        return [r.split()[0] for r in self.requests]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def standin():
    payload, hf = _standin_checkpoint()
    return payload, hashlib.sha256(payload).hexdigest(), hf


@pytest.fixture
def hub(standin, tmp_path, monkeypatch):
    """The stand-in Hub, with huggingface_hub allowed to reach it: the course runs the tests with
    HF_HUB_OFFLINE=1 (which huggingface_hub reads once, at import) and a dead proxy for all but
    loopback. Its own cache is a temporary folder, and its 1 s pause before resuming is skipped."""
    import huggingface_hub.constants
    import huggingface_hub.file_download

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", dl.ALLOW_ENV, dl.ENDPOINT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(huggingface_hub.file_download, "time", types.SimpleNamespace(sleep=lambda s: None))
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 1 << 14)  # a big file: many chunks
    srv = _Hub(standin[0])
    yield srv
    srv.close()


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "gpt2"


@pytest.fixture
def fetch(hub, standin, cache):
    """GPT-2 124M from the stand-in Hub, verified against the stand-in's hash (the caller's)."""
    def _fetch(**kwargs):
        kwargs.setdefault("allow_download", True)
        kwargs.setdefault("expected_sha256", standin[1])
        kwargs.setdefault("endpoint", hub.endpoint)
        return gpt2_weights_path("124M", cache_dir=cache, progress=False, **kwargs)
    return _fetch


@pytest.fixture
def fetch_medium(hub, cache):
    """GPT-2 355M (no pinned hash) from the stand-in Hub: the hash comes from its paths-info answer."""
    def _fetch(**kwargs):
        kwargs.setdefault("allow_download", True)
        return gpt2_weights_path("355M", cache_dir=cache, endpoint=hub.endpoint, progress=False, **kwargs)
    return _fetch


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pinned_sources_are_well_formed(monkeypatch):
    monkeypatch.delenv(dl.ENDPOINT_ENV, raising=False)
    assert set(dl.GPT2_FILES) == {"124M", "355M", "774M", "1558M"}
    for spec in dl.GPT2_FILES.values():
        assert re.fullmatch(r"[0-9a-f]{40}", spec.revision), spec  # a commit, never a moving branch
        assert spec.url == f"https://huggingface.co/{spec.repo}/resolve/{spec.revision}/model.safetensors"
        assert spec.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
    assert dl.GPT2_FILES["124M"].sha256.startswith("248dfc39") and dl.GPT2_FILES["1558M"].sha256.startswith("0f8b28eb")
    assert dl._spec("gpt2-xl").size == "1558M"
    with pytest.raises(ValueError, match="unknown GPT-2 size '7B'"):
        dl._spec("7B")


def test_the_transfer_is_huggingface_hubs_at_the_pinned_commit(fetch, hub, standin, cache):
    path = fetch()
    spec = dl.GPT2_FILES["124M"]
    assert path == cache / "gpt2-124M.safetensors" and _sha(path) == standin[1]
    assert hub.requests == [f"{m} /{spec.repo}/resolve/{spec.revision}/model.safetensors" for m in ("HEAD", "GET")]
    assert "gptlib/" in hub.headers[-1]["user-agent"] and "hf_hub/" in hub.headers[-1]["user-agent"]
    assert [p.name for p in cache.iterdir()] == [path.name]  # no staging folder, no .incomplete left
    assert fetch(allow_download=False) == path  # cached: verified again, no request
    assert len(hub.requests) == 2


def test_hf_endpoint_is_read_at_every_call(fetch, hub, monkeypatch):
    """huggingface_hub reads HF_ENDPOINT once, at import; we read it at each call and pass it on."""
    monkeypatch.setenv(dl.ENDPOINT_ENV, hub.endpoint + "/")
    spec = dl.GPT2_FILES["355M"]
    assert spec.url == f"{hub.endpoint}/openai-community/gpt2-medium/resolve/{spec.revision}/model.safetensors"
    assert fetch(endpoint=None).is_file() and hub.methods() == ["HEAD", "GET"]


def test_download_is_off_by_default(fetch, hub, cache):
    with pytest.raises(DownloadError, match=r"not in the cache.*GPTLIB_ALLOW_DOWNLOAD=1"):
        fetch(allow_download=None)
    assert hub.requests == [] and not cache.exists()


def test_environment_variable_turns_downloads_on(fetch, hub, monkeypatch):
    monkeypatch.setenv(dl.ALLOW_ENV, "1")
    assert fetch(allow_download=None).is_file()
    assert hub.methods() == ["HEAD", "GET"]


def test_hf_hub_offline_with_downloads_allowed_is_a_clear_error(fetch, hub, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="failed: .*offline mode is enabled.*unset the `HF_HUB_OFFLINE`"):
        fetch()
    assert hub.requests == []


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert dl.gpt2_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(dl.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty counts as unset: never the current folder
    assert dl.gpt2_cache_dir().parts[-2:] == ("gptlib", "gpt2") and dl.gpt2_cache_dir().is_absolute()


def test_corrupted_cache_is_replaced_by_a_verified_download(fetch, hub, standin):
    path = fetch()
    path.write_bytes(b"\x00" * 100 + path.read_bytes()[100:])  # same size, wrong bytes
    assert fetch() == path
    assert hub.methods() == ["HEAD", "GET"] * 2 and _sha(path) == standin[1]


def test_corrupted_cache_offline_is_refused_but_not_deleted(fetch, hub):
    path = fetch()
    damaged = path.read_bytes()[:1000]
    path.write_bytes(damaged)  # a truncated copy: never loaded, but offline it cannot be fetched again
    with pytest.raises(DownloadError, match=r"does not match its expected sha256.*left in place.*ALLOW_DOWNLOAD"):
        fetch(allow_download=False)
    assert path.read_bytes() == damaged


def test_a_short_transfer_is_refused_and_changes_nothing(fetch, hub, standin, cache):
    path = fetch()
    path.write_bytes(b"damaged")
    hub.mode = "truncate"
    with pytest.raises(DownloadError, match=r"failed: .*(size|closed|incomplete).*nothing in the cache was changed"):
        fetch()
    assert [p.name for p in cache.iterdir()] == [path.name] and path.read_bytes() == b"damaged"
    hub.mode = "ok"
    assert _sha(fetch()) == standin[1]


def test_an_interrupted_transfer_is_resumed(fetch, hub, standin):
    hub.mode = "truncate-once"  # the connection drops half-way; huggingface_hub asks for the rest
    assert _sha(fetch()) == standin[1]
    gets = [h for r, h in zip(hub.requests, hub.headers) if r.startswith("GET")]
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", gets[1]["range"]).group(1))  # whole chunks received so far
    assert len(gets) == 2 and 0 < resumed_at <= len(standin[0]) // 2


def test_wrong_bytes_are_never_kept(fetch, hub, cache):
    hub.mode = "corrupt"
    with pytest.raises(DownloadError, match=r"came with sha256 [0-9a-f]{12}…, not [0-9a-f]{12}…: refusing to use it"):
        fetch()
    assert not any(cache.iterdir())


def test_http_error_is_clear(fetch, hub):
    hub.mode = "missing"
    with pytest.raises(DownloadError, match=r"GPT-2 124M from http://127\.0\.0\.1:\d+ failed: .*404"):
        fetch()


def test_unpinned_size_is_verified_against_the_lfs_pointer(fetch_medium, hub, standin, cache):
    spec = dl.GPT2_FILES["355M"]
    path = fetch_medium()
    assert _sha(path) == standin[1]
    assert hub.requests == [f"POST /api/models/{spec.repo}/paths-info/{spec.revision}",
                            f"HEAD /{spec.repo}/resolve/{spec.revision}/model.safetensors",
                            f"GET /{spec.repo}/resolve/{spec.revision}/model.safetensors"]
    record = json.loads((cache / "gpt2-355M.safetensors.sha256").read_text())
    assert record == {"sha256": standin[1], "repo": spec.repo, "revision": spec.revision, "file": "model.safetensors"}
    assert fetch_medium(allow_download=False) == path  # offline: checked against the record
    assert len(hub.requests) == 3


def test_unpinned_size_refuses_bytes_that_differ_from_the_pointer(fetch_medium, hub, cache):
    hub.lfs_oid = "ab" * 32  # the file no longer hashes to what the commit's pointer says
    with pytest.raises(DownloadError, match="refusing to use it"):
        fetch_medium()
    assert not any(cache.iterdir())


def test_unpinned_size_offline_without_a_record_is_clear(fetch_medium, hub):
    with pytest.raises(DownloadError, match=r"not in the cache.*GPTLIB_ALLOW_DOWNLOAD=1"):
        fetch_medium(allow_download=False)
    assert hub.requests == []


def test_a_corrupt_record_keeps_the_file_offline_and_is_repaired_online(fetch_medium, hub, standin, cache):
    path = fetch_medium()
    record = cache / "gpt2-355M.safetensors.sha256"
    record.write_text('{"sha256": "' + "cd" * 32 + '"}')
    with pytest.raises(DownloadError, match="does not match"):
        fetch_medium(allow_download=False)  # offline: nothing trustworthy to compare with, nothing deleted
    assert _sha(path) == standin[1]
    hub.requests.clear()
    assert fetch_medium() == path  # online: the pointer's hash again; the file matches it, no download
    assert hub.methods() == ["POST"] and json.loads(record.read_text())["sha256"] == standin[1]


def test_hand_placed_file_is_verified_without_downloading(fetch_medium, hub, standin, cache):
    cache.mkdir()
    (cache / "gpt2-355M.safetensors").write_bytes(standin[0])
    assert fetch_medium().read_bytes() == standin[0]
    assert hub.methods() == ["POST"]  # metadata only


def test_explicit_hash_needs_no_metadata(fetch_medium, hub, standin):
    fetch_medium(expected_sha256=standin[1].upper())  # as copied from a web page, in capitals
    assert hub.methods() == ["HEAD", "GET"]
    for bad in ("abc", "0" * 63, 42):
        with pytest.raises(ValueError, match="64 hex digits"):
            fetch_medium(expected_sha256=bad)


@pytest.mark.parametrize("allow, facts", [
    (False, r"does not match its expected sha256.*left in place"),
    (True, r"came with sha256 [0-9a-f]{12}…, not 000000000000…: refusing to use it.*nothing in the cache was changed"),
])
def test_a_wrong_caller_hash_never_deletes_a_verified_file(fetch_medium, hub, standin, cache, allow, facts):
    """Issue 13, item 5: the file matches its recorded hash, the caller's hash is wrong: the caller's hash
    is the one checked (offline: the file is not used; online: the download fails it), nothing is lost."""
    path = fetch_medium()
    record = (cache / "gpt2-355M.safetensors.sha256").read_text()
    with pytest.raises(DownloadError, match=facts):
        fetch_medium(expected_sha256="0" * 64, allow_download=allow)
    assert _sha(path) == standin[1] and (cache / "gpt2-355M.safetensors.sha256").read_text() == record
    assert sorted(p.name for p in cache.iterdir()) == ["gpt2-355M.safetensors", "gpt2-355M.safetensors.sha256"]


def test_the_pinned_hash_alone_verifies_a_cached_file_offline(fetch, hub, standin, monkeypatch):
    path = fetch()
    monkeypatch.setitem(dl.GPT2_FILES, "124M", dataclasses.replace(dl.GPT2_FILES["124M"], sha256=standin[1]))
    hub.requests.clear()
    assert fetch(expected_sha256=None, allow_download=False) == path
    with pytest.raises(DownloadError, match="does not match its expected sha256"):
        fetch(expected_sha256="1" * 64, allow_download=False)  # the caller's hash replaces the pinned one
    assert _sha(path) == standin[1] and hub.requests == []


def test_a_verified_file_that_is_not_safetensors_is_one_clear_line(cache):
    """Issue 23: a hand-made 355M stand-in whose recorded hash matches, but no safetensors inside."""
    cache.mkdir()
    (cache / "gpt2-355M.safetensors").write_bytes(b"stand-in weights")
    record = {"sha256": hashlib.sha256(b"stand-in weights").hexdigest()}
    (cache / "gpt2-355M.safetensors.sha256").write_text(json.dumps(record))
    with pytest.raises(DownloadError) as err:
        dl.load_gpt2("355M", cache_dir=cache, allow_download=False)
    message = str(err.value)
    assert "\n" not in message and "gpt2-355M.safetensors" in message and "not a safetensors file" in message
    assert (cache / "gpt2-355M.safetensors").read_bytes() == b"stand-in weights"  # reported, not deleted


def test_metadata_failure_is_clear(hub, cache):
    with pytest.raises(DownloadError, match="reading the sha256 of GPT-2 774M .* failed: .*404"):
        gpt2_weights_path("774M", cache_dir=cache, endpoint=hub.endpoint + "/nope", allow_download=True,
                          progress=False)
    assert not cache.exists()


def test_loaded_model_matches_hugging_face(standin, hub, cache):
    from gptlib.model import GPTConfig

    cfg = GPTConfig(vocab_size=VOCAB, context_length=CONTEXT, emb_dim=EMB, n_heads=HEADS, n_layers=LAYERS,
                    drop_rate=0.0, qkv_bias=True)
    model = dl.load_gpt2("124M", cfg=cfg, cache_dir=cache, endpoint=hub.endpoint, expected_sha256=standin[1],
                         allow_download=True, progress=False)
    ids = torch.randint(0, VOCAB, (2, 17), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(ids)
        theirs = standin[2](ids).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert not model.training
