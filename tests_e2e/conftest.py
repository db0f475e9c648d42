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
    root: Path        # the server's root_dir, the learner's copy: notebooks in root / "notebooks"
    log_path: Path


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_ready(url: str, token: str = "") -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(f"{url}/api/status?token={token}", timeout=2) as response:
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


# --- who runs the server, and which fonts its kernels see -----------------------------------------
LEARNER_UID = 65534  # "nobody": a user who is not root


def as_learner_prefix() -> list[str]:
    """Run a command as an ordinary user (euid 65534) who can still read the venv (which may live under /root):
    only CAP_DAC_READ_SEARCH is kept. Skips when this process is not root or ``setpriv`` is missing."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("running JupyterLab as another user needs root and setpriv (util-linux)")
    return ["setpriv", f"--reuid={LEARNER_UID}", f"--regid={LEARNER_UID}", "--clear-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")


def without_system_fonts_prefix(empty: Path) -> list[str]:
    """Hide the system's fonts from a command (and its kernels): empty bind mounts over the font folders in a
    private mount namespace (nothing outside changes); with a fresh MPLCONFIGDIR, matplotlib then knows only its
    own fonts and the course's packaged one. Skips without root and ``unshare``."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("unshare") \
            or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("hiding the system fonts needs Linux, root and `unshare -m`")
    empty.mkdir(parents=True, exist_ok=True)
    hide = " ".join(f'[ -d "{d}" ] && mount --bind "{empty}" "{d}";' for d in SYSTEM_FONT_DIRS)
    return ["unshare", "-m", "sh", "-c", f'{hide} exec "$0" "$@"']


def _start_lab(cwd: Path, home: Path, log_path: Path, lab_args: list[str], prefix: list[str] = (),
               token: str = "") -> tuple[subprocess.Popen, str]:
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
        # a fresh font cache: matplotlib lists the fonts this machine has now (e.g. fonts-wqy-zenhei, which
        # made day 3 print a findfont warning), as on a learner's first start
        "MPLCONFIGDIR": str(home / "matplotlib"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "JUPYTER_TOKEN": token,
    })
    if prefix:  # another user: a home of its own
        env.update({"HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")})
    cmd = [
        *prefix, sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ip", "127.0.0.1", "--port", str(port), "--ServerApp.port_retries=0", "--ServerApp.password=",
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
def running_lab(cwd: Path, home: Path, log_path: Path, lab_args: list[str], prefix: list[str] = (), token: str = ""):
    """JupyterLab on a free loopback port with course.py's settings overrides; yields (pid, url), stops by PID.

    The overrides go to the private config folder's ``labconfig/default_setting_overrides.json``, which
    JupyterLab merges like the ``overrides.json`` that course.py writes into the venv. ``prefix`` runs the
    server through another command (another user, hidden fonts); ``token`` is its token (empty: none).
    """
    COURSE.write_lab_overrides(home / "config" / "labconfig" / "default_setting_overrides.json",
                               COURSE.lab_setting_overrides())
    owner = home.stat()
    if hasattr(os, "geteuid") and os.geteuid() == 0 and owner.st_uid != 0:  # another user's home: theirs
        for path in [home / "config", *(home / "config").rglob("*")]:
            os.chown(path, owner.st_uid, owner.st_gid)
    log_path.write_bytes(b"")
    for _attempt in range(3):  # port_retries=0: another process may take the port we picked
        proc, url = _start_lab(cwd, home, log_path, lab_args, prefix, token)
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline and not _server_ready(url, token):
                time.sleep(0.5)
            if proc.poll() is None and _server_ready(url, token):
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


def make_learners_copy(base: Path) -> Path:
    """The learner's copy as ``course.py lab`` makes it on a first start (``sync_my_course``): notebooks and
    figures of the course (or of $E2E_NOTEBOOKS_DIR) in ``base/my-course``."""
    repo = REPO
    if NOTEBOOKS_DIR != REPO / "notebooks":  # other notebooks: a small course folder pointing at them
        repo = base / "course"
        repo.mkdir(parents=True)
        (repo / "notebooks").symlink_to(NOTEBOOKS_DIR)
        (repo / "figures").symlink_to(REPO / "figures")
    root = base / COURSE.MY_COURSE
    COURSE.sync_my_course(repo, root)
    return root


def _lab_server(base: Path, log_path: Path, prefix: list[str] = ()):
    """JupyterLab started with course.py's arguments on a learner's copy, no token; yields a LabServer."""
    root, home = make_learners_copy(base / "work"), base / "home"
    lab_args = COURSE.lab_arguments(root, euid=os.geteuid()) + ["--IdentityProvider.token="]
    with running_lab(root, home, log_path, lab_args, prefix) as (pid, url):
        yield LabServer(url=url, pid=pid, root=root, log_path=log_path)


@pytest.fixture(scope="session")
def lab_server(browser, tmp_path_factory, artifacts_dir):
    """JupyterLab as ``course.py lab`` starts it (its arguments, on a learner's copy), the system's fonts visible."""
    yield from _lab_server(tmp_path_factory.mktemp("e2e-lab"), artifacts_dir / "jupyter-server.log")


@pytest.fixture(scope="session")
def lab_server_without_system_fonts(browser, tmp_path_factory, artifacts_dir):
    """The same, with the system's fonts hidden from the server and its kernels (as on a machine without CJK fonts)."""
    base = tmp_path_factory.mktemp("e2e-lab-nofonts")
    yield from _lab_server(base, artifacts_dir / "jupyter-server-no-system-fonts.log",
                           without_system_fonts_prefix(base / "empty"))


@pytest.fixture
def course_start():
    """What a first-start test needs from here: course.py, the learner's copy, a server, another user."""
    from types import SimpleNamespace

    return SimpleNamespace(course=COURSE, make_learners_copy=make_learners_copy, running_lab=running_lab,
                           as_learner_prefix=as_learner_prefix)
