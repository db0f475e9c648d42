"""Opt-in GPT-2 download: verified, cached, never loads a bad file. Offline: a loopback server
serves a small random GPT-2 checkpoint in the same format as OpenAI's model.safetensors."""
from __future__ import annotations

import hashlib
import http.server
import re
import threading

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
    """A loopback HTTP server with one file; ``mode`` makes it misbehave on purpose."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.mode = "ok"  # "ok" | "truncate" (hangs up half-way) | "corrupt" (flips bytes)
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.requests += 1
                if self.path != "/gpt2/model.safetensors":
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

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/gpt2/model.safetensors"
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


def test_pinned_sources_are_well_formed():
    small = dl.GPT2_FILES["124M"]
    assert re.fullmatch(r"[0-9a-f]{64}", small.sha256)
    assert re.fullmatch(r"[0-9a-f]{40}", small.revision) and small.revision in small.url
    assert small.url.startswith("https://huggingface.co/openai-community/gpt2/resolve/")
    assert set(dl.GPT2_FILES) == {"124M", "355M", "774M", "1558M"}
    assert dl._spec("gpt2-xl").size == "1558M"
    with pytest.raises(ValueError, match="unknown GPT-2 size"):
        dl._spec("7B")


def test_download_is_off_by_default(fetch, server, tmp_path):
    with pytest.raises(DownloadError, match=r"GPTLIB_ALLOW_DOWNLOAD=1"):
        fetch(allow_download=None)
    assert server.requests == 0 and not any(tmp_path.iterdir())


def test_download_verifies_and_caches(fetch, server, standin, tmp_path):
    path = fetch()
    assert path.parent == tmp_path and path.name == "gpt2-124M.safetensors"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == standin[1]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no .part left behind
    assert fetch(allow_download=False) == path  # cached: verified again, no request
    assert server.requests == 1


def test_environment_variable_turns_downloads_on(fetch, server, monkeypatch):
    monkeypatch.setenv(dl.ALLOW_ENV, "1")
    assert fetch(allow_download=None).is_file()
    assert server.requests == 1


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert dl.gpt2_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(dl.CACHE_ENV)
    assert dl.gpt2_cache_dir().parts[-2:] == ("gptlib", "gpt2")


def test_corrupted_cache_is_refetched(fetch, server, standin):
    path = fetch()
    path.write_bytes(b"\x00" * 100 + path.read_bytes()[100:])  # same size, wrong bytes
    assert fetch() == path
    assert server.requests == 2
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


def test_unpinned_size_needs_an_explicit_hash(tmp_path, server):
    with pytest.raises(DownloadError, match="expected_sha256"):
        gpt2_weights_path("355M", cache_dir=tmp_path, allow_download=True, url=server.url)
    assert server.requests == 0


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
