"""Opt-in GPT-2 download: verified, cached, never loads a bad file. Offline: a loopback server
serves a small random GPT-2 checkpoint in the same format as OpenAI's model.safetensors."""
from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import urllib.parse

import pytest
import torch

from gptlib import download as dl
from gptlib.download import DownloadError, gpt2_weights_path

VOCAB, CONTEXT, EMB, HEADS, LAYERS = 300, 64, 32, 4, 2


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


class _Server:
    """A loopback stand-in for the Hub: every ``/<repo>/resolve/<commit>/model.safetensors`` serves
    the payload, and ``POST /api/models/<repo>/paths-info/<commit>`` answers like huggingface.co,
    with the payload's sha256 as the LFS oid. ``mode`` makes it misbehave on purpose."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.mode = "ok"  # "ok" | "truncate" (hangs up half-way) | "corrupt" (flips bytes)
        self.lfs_oid = hashlib.sha256(payload).hexdigest()  # what paths-info reports
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.requests.append(f"GET {self.path}")
                if not (self.path == "/gpt2/model.safetensors"
                        or re.fullmatch(r"/[\w.-]+/[\w.-]+/resolve/[0-9a-f]{40}/model\.safetensors", self.path)):
                    self.send_error(404)
                    return
                body = server.payload
                if server.mode == "corrupt":
                    body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if server.mode == "truncate" else body)
                self.wfile.flush()
                self.close_connection = True

            def do_POST(self):  # noqa: N802
                server.requests.append(f"POST {self.path}")
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                if (not re.fullmatch(r"/api/models/[\w.-]+/[\w.-]+/paths-info/[0-9a-f]{40}", self.path)
                        or form.get("paths") != ["model.safetensors"]):
                    self.send_error(404)
                    return
                answer = json.dumps([{"type": "file", "path": "model.safetensors", "size": len(server.payload),
                                      "oid": "0" * 40, "lfs": {"oid": server.lfs_oid, "size": len(server.payload),
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
        self.url = f"{self.endpoint}/gpt2/model.safetensors"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def standin():
    payload, hf = _standin_checkpoint()
    return payload, hashlib.sha256(payload).hexdigest(), hf


@pytest.fixture
def server(standin):
    srv = _Server(standin[0])
    yield srv
    srv.close()


@pytest.fixture
def fetch(server, standin, tmp_path, monkeypatch):
    """gpt2_weights_path wired to the local server and a temporary cache."""
    monkeypatch.delenv(dl.ALLOW_ENV, raising=False)

    def _fetch(**kwargs):
        kwargs.setdefault("allow_download", True)
        return gpt2_weights_path("124M", cache_dir=tmp_path, url=server.url, expected_sha256=standin[1],
                                 progress=False, **kwargs)
    return _fetch


def test_pinned_sources_are_well_formed(monkeypatch):
    monkeypatch.delenv(dl.ENDPOINT_ENV, raising=False)
    assert set(dl.GPT2_FILES) == {"124M", "355M", "774M", "1558M"}
    for spec in dl.GPT2_FILES.values():
        assert re.fullmatch(r"[0-9a-f]{40}", spec.revision), spec  # a commit, never a moving branch
        assert spec.url == f"https://huggingface.co/{spec.repo}/resolve/{spec.revision}/model.safetensors"
        assert spec.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
    assert dl.GPT2_FILES["124M"].sha256.startswith("248dfc39") and dl.GPT2_FILES["1558M"].sha256.startswith("0f8b28eb")
    assert dl._spec("gpt2-xl").size == "1558M"
    with pytest.raises(ValueError, match="unknown GPT-2 size"):
        dl._spec("7B")


def test_endpoint_follows_hf_endpoint(monkeypatch):
    monkeypatch.setenv(dl.ENDPOINT_ENV, "https://mirror.example/")
    spec = dl.GPT2_FILES["355M"]
    assert spec.url == f"https://mirror.example/openai-community/gpt2-medium/resolve/{spec.revision}/model.safetensors"
    assert spec.paths_info_url() == f"https://mirror.example/api/models/openai-community/gpt2-medium/paths-info/{spec.revision}"


def test_download_is_off_by_default(fetch, server, tmp_path):
    with pytest.raises(DownloadError, match=r"GPTLIB_ALLOW_DOWNLOAD=1"):
        fetch(allow_download=None)
    assert server.requests == [] and not any(tmp_path.iterdir())


def test_download_verifies_and_caches(fetch, server, standin, tmp_path):
    path = fetch()
    assert path.parent == tmp_path and path.name == "gpt2-124M.safetensors"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == standin[1]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no .part left behind
    assert fetch(allow_download=False) == path  # cached: verified again, no request
    assert len(server.requests) == 1


def test_environment_variable_turns_downloads_on(fetch, server, monkeypatch):
    monkeypatch.setenv(dl.ALLOW_ENV, "1")
    assert fetch(allow_download=None).is_file()
    assert len(server.requests) == 1


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert dl.gpt2_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(dl.CACHE_ENV)
    assert dl.gpt2_cache_dir().parts[-2:] == ("gptlib", "gpt2")


def test_corrupted_cache_is_refetched(fetch, server, standin):
    path = fetch()
    path.write_bytes(b"\x00" * 100 + path.read_bytes()[100:])  # same size, wrong bytes
    assert fetch() == path
    assert len(server.requests) == 2
    assert hashlib.sha256(path.read_bytes()).hexdigest() == standin[1]


def test_corrupted_cache_is_deleted_not_loaded_when_offline(fetch, server):
    path = fetch()
    path.write_bytes(path.read_bytes()[:1000])  # a truncated copy
    with pytest.raises(DownloadError, match="did not match its sha256"):
        fetch(allow_download=False)
    assert not path.exists()


def test_partial_download_is_refused_then_refetched(fetch, server, standin, tmp_path):
    server.mode = "truncate"
    with pytest.raises(DownloadError, match="incomplete|failed"):
        fetch()
    assert not any(tmp_path.iterdir())  # neither the final name nor a .part
    server.mode = "ok"
    assert hashlib.sha256(fetch().read_bytes()).hexdigest() == standin[1]


def test_leftover_part_file_is_discarded(fetch, tmp_path, standin):
    (tmp_path / "gpt2-124M.safetensors.part").write_bytes(b"half a file")
    path = fetch()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == standin[1]
    assert not (tmp_path / "gpt2-124M.safetensors.part").exists()


def test_wrong_bytes_are_never_kept(fetch, server, tmp_path):
    server.mode = "corrupt"
    with pytest.raises(DownloadError, match="sha256"):
        fetch()
    assert not any(tmp_path.iterdir())


def test_http_error_is_clear(server, standin, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        gpt2_weights_path("124M", cache_dir=tmp_path, url=server.url.replace("gpt2/", "nope/"),
                          expected_sha256=standin[1], allow_download=True, progress=False)


@pytest.fixture
def fetch_medium(server, tmp_path, monkeypatch):
    """GPT-2 355M (no pinned hash) from the stand-in Hub: the hash comes from its paths-info answer."""
    monkeypatch.delenv(dl.ALLOW_ENV, raising=False)

    def _fetch(**kwargs):
        kwargs.setdefault("allow_download", True)
        return gpt2_weights_path("355M", cache_dir=tmp_path, endpoint=server.endpoint, progress=False, **kwargs)
    return _fetch


def test_unpinned_size_is_verified_against_the_lfs_pointer(fetch_medium, server, standin, tmp_path):
    spec = dl.GPT2_FILES["355M"]
    path = fetch_medium()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == standin[1]
    assert server.requests == [f"POST /api/models/{spec.repo}/paths-info/{spec.revision}",
                               f"GET /{spec.repo}/resolve/{spec.revision}/model.safetensors"]
    record = json.loads((tmp_path / "gpt2-355M.safetensors.sha256").read_text())
    assert record == {"sha256": standin[1], "repo": spec.repo, "revision": spec.revision, "file": "model.safetensors"}
    assert fetch_medium(allow_download=False) == path  # offline: checked against the record
    assert len(server.requests) == 2


def test_unpinned_size_refuses_bytes_that_differ_from_the_pointer(fetch_medium, server, tmp_path):
    server.lfs_oid = "ab" * 32  # the file no longer hashes to what the commit's pointer says
    with pytest.raises(DownloadError, match="refusing to use it"):
        fetch_medium()
    assert not (tmp_path / "gpt2-355M.safetensors").exists()


def test_unpinned_size_offline_without_a_record_is_clear(fetch_medium, server):
    with pytest.raises(DownloadError, match=r"not in the cache.*GPTLIB_ALLOW_DOWNLOAD=1"):
        fetch_medium(allow_download=False)
    assert server.requests == []


def test_unpinned_size_with_a_corrupt_record_is_refetched(fetch_medium, server, standin, tmp_path):
    path = fetch_medium()
    (tmp_path / "gpt2-355M.safetensors.sha256").write_text('{"sha256": "' + "cd" * 32 + '"}')
    with pytest.raises(DownloadError, match="did not match"):
        fetch_medium(allow_download=False)  # offline: nothing trustworthy left, nothing loaded
    assert not path.exists()
    assert fetch_medium() == path  # online: the pointer's hash again, the file again
    assert hashlib.sha256(path.read_bytes()).hexdigest() == standin[1]


def test_hand_placed_file_is_verified_without_downloading(fetch_medium, server, standin, tmp_path):
    (tmp_path / "gpt2-355M.safetensors").write_bytes(standin[0])
    assert fetch_medium().read_bytes() == standin[0]
    assert [r.split()[0] for r in server.requests] == ["POST"]  # metadata only


def test_explicit_hash_needs_no_metadata(fetch_medium, server, standin):
    fetch_medium(expected_sha256=standin[1])
    assert [r.split()[0] for r in server.requests] == ["GET"]
    with pytest.raises(ValueError, match="64 hex digits"):
        fetch_medium(expected_sha256="abc")


def test_metadata_failure_is_clear(server, tmp_path):
    with pytest.raises(DownloadError, match="could not read the sha256 of GPT-2 774M"):
        gpt2_weights_path("774M", cache_dir=tmp_path, endpoint=server.endpoint + "/nope", allow_download=True,
                          progress=False)
    assert not any(tmp_path.iterdir())


def test_loaded_model_matches_hugging_face(standin, server, tmp_path):
    from gptlib.model import GPTConfig

    cfg = GPTConfig(vocab_size=VOCAB, context_length=CONTEXT, emb_dim=EMB, n_heads=HEADS, n_layers=LAYERS,
                    drop_rate=0.0, qkv_bias=True)
    model = dl.load_gpt2("124M", cfg=cfg, cache_dir=tmp_path, url=server.url, expected_sha256=standin[1],
                         allow_download=True, progress=False)
    ids = torch.randint(0, VOCAB, (2, 17), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(ids)
        theirs = standin[2](ids).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert not model.training
