"""Fixtures for the end-to-end browser test: a private JupyterLab server on loopback and headless Chromium.

The server runs on a temporary copy of the notebooks with its own config, runtime, settings and
workspace folders, so a run never touches the committed notebooks or the user's Jupyter set-up.
It is started as its own process and stopped by that PID. The browser is Debian's Chromium
(`tests_e2e/install_browser.sh`) driven by Playwright; without either, the test skips and says why.
"""
from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The notebooks to serve (copied first); E2E_NOTEBOOKS_DIR points the test at other copies.
NOTEBOOKS_DIR = Path(os.environ.get("E2E_NOTEBOOKS_DIR", REPO / "notebooks"))
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
# Playwright's own browser download is not used (and does not work offline): these flags are what
# Debian's Chromium needs to run headless as root in a container, with nothing reaching the network.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server",
]
SERVER_START_TIMEOUT_S = 90


def _load_course():
    """course.py, the learner's entry point (a script at the repository root, loaded by path): the one
    place that says how the course's JupyterLab is started and which settings make its first start calm."""
    spec = importlib.util.spec_from_file_location("course", REPO / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COURSE = _load_course()

_artifact_dirs: list[Path] = []


def _require_browser() -> bool:
    """E2E_REQUIRE_BROWSER=1 turns a missing browser into a failure (for CI, where it must run)."""
    return os.environ.get("E2E_REQUIRE_BROWSER", "") not in ("", "0")


def _skip(reason: str):
    if _require_browser():
        pytest.fail(f"{reason} (E2E_REQUIRE_BROWSER is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


# --- network guard: this process may only talk to loopback (as tests/conftest.py does for tests/) ---
_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:  # a host name
            loopback = host == "localhost"
        if not loopback:
            raise RuntimeError(f"test tried to reach the network ({host}); tests must run offline")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


# --- artefacts ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    """Where screenshots and the server log go: $E2E_ARTIFACTS, or a pytest temporary folder."""
    env = os.environ.get("E2E_ARTIFACTS")
    path = Path(env).resolve() if env else tmp_path_factory.mktemp("e2e-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    _artifact_dirs.append(path)
    return path


def pytest_terminal_summary(terminalreporter):
    for path in _artifact_dirs:
        terminalreporter.write_line(f"browser test artefacts (screenshots, server log): {path}")


# --- the browser ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium under Playwright; skips with the reason when either is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _skip(f"no Chromium at {CHROMIUM}: run tests_e2e/install_browser.sh (Debian/Ubuntu, root) "
              "or set E2E_CHROMIUM to a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip("Playwright is not installed: pip install -r requirements.txt")
    pw = sync_playwright().start()
    try:
        try:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        except Exception as exc:  # a broken or incompatible browser: say so instead of a traceback
            first_line = (str(exc).strip().splitlines() or ["?"])[0]
            _skip(f"Chromium at {CHROMIUM} did not start under Playwright: {first_line}")
        yield chromium
        chromium.close()
    finally:
        pw.stop()


# --- the JupyterLab server ------------------------------------------------------------------------
@dataclass
class LabServer:
    url: str
    pid: int
    root: Path        # the server's root_dir; the notebook copies are in root / "notebooks"
    log_path: Path


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_ready(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(f"{url}/api/status", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server by its PID (SIGTERM: it shuts its kernels down), then its process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    try:  # a kernel the server failed to shut down is in the server's own process group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _start_lab(cwd: Path, home: Path, log_path: Path, lab_args: list[str]) -> tuple[subprocess.Popen, str]:
    port = _free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ip", "127.0.0.1", "--port", str(port), "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands, read cell models
        *lab_args,
    ]
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        log.close()
    return proc, url


@contextlib.contextmanager
def running_lab(cwd: Path, home: Path, log_path: Path, lab_args: list[str]):
    """JupyterLab on a free loopback port with course.py's settings overrides; yields (pid, url), stops by PID.

    The overrides go to the private config folder's ``labconfig/default_setting_overrides.json``, which
    JupyterLab merges like the ``overrides.json`` that course.py writes into the venv.
    """
    COURSE.write_lab_overrides(home / "config" / "labconfig" / "default_setting_overrides.json",
                               COURSE.lab_setting_overrides())
    log_path.write_bytes(b"")
    for _attempt in range(3):  # port_retries=0: another process may take the port we picked
        proc, url = _start_lab(cwd, home, log_path, lab_args)
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline and not _server_ready(url):
                time.sleep(0.5)
            if proc.poll() is None and _server_ready(url):
                break
        except BaseException:
            _stop(proc)
            raise
        _stop(proc)
    else:
        tail = log_path.read_text(errors="replace")[-3000:]
        pytest.fail(f"JupyterLab did not start on loopback; the end of its log:\n{tail}", pytrace=False)
    try:
        yield proc.pid, url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def lab_server(browser, tmp_path_factory, artifacts_dir):
    """JupyterLab on a free loopback port, serving a temporary copy of notebooks/; stopped by PID."""
    base = tmp_path_factory.mktemp("e2e-lab")
    root, home = base / "work", base / "home"
    shutil.copytree(NOTEBOOKS_DIR, root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    lab_args = [f"--ServerApp.root_dir={root}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with running_lab(root, home, artifacts_dir / "jupyter-server.log", lab_args) as (pid, url):
        yield LabServer(url=url, pid=pid, root=root, log_path=artifacts_dir / "jupyter-server.log")


@dataclass
class CourseLab:
    open_url: str        # the address course.py's `jupyter lab` opens in the learner's browser
    first_notebook: str  # its path in the file browser, e.g. day1_tokenize.ipynb


@pytest.fixture
def course_lab(browser, tmp_path, artifacts_dir):
    """JupyterLab started as ``python3 course.py lab`` starts it (course.py's ``lab_arguments``: the file
    browser at a copy of notebooks/, day 1 to open), in fresh settings folders as on a first start."""
    notebooks, home = tmp_path / "notebooks", tmp_path / "home"
    shutil.copytree(NOTEBOOKS_DIR, notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    with running_lab(tmp_path, home, artifacts_dir / "jupyter-server-first-start.log",
                     COURSE.lab_arguments(notebooks)) as (pid, url):
        # The server writes the address it would open into a small redirect page (the token stays off the command line).
        html = (home / "runtime" / f"jpserver-file-to-run-{pid}-open.html").read_text(encoding="utf-8")
        open_url = re.search(r'url=([^"]+)"', html).group(1)
        assert open_url.startswith(url), open_url
        yield CourseLab(open_url=open_url, first_notebook=COURSE.FIRST_NOTEBOOK)
