"""course.py, the cross-platform entry point: its platform-dependent parts, simulated for each OS,
and the pieces of set-up that need no network. (CI runs the whole of it: `.ci/run` is `python3 course.py test`.)"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_course():
    """course.py is a script at the repository root, not a package: load it by path."""
    spec = importlib.util.spec_from_file_location("course", REPO / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


course = load_course()


@pytest.mark.parametrize("platform, folder, python", [
    ("win32", "Scripts", "python.exe"),
    ("darwin", "bin", "python"),
    ("linux", "bin", "python"),
])
def test_venv_layout_per_platform(platform, folder, python):
    venv = Path("work") / ".venv"
    assert course.venv_bin(venv, platform) == venv / folder
    assert course.venv_python(venv, platform) == venv / folder / python


def test_venv_layout_of_this_machine_is_the_running_venv():
    """The pure function agrees with the real venv running these tests."""
    assert course.venv_python(Path(sys.prefix)).exists()


def test_lab_settings_live_in_the_venvs_share_folder_on_every_os():
    assert course.lab_settings_dir(Path("v")) == Path("v", "share", "jupyter", "lab", "settings")


def test_hand_over_on_windows_waits_and_returns_the_exit_status():
    # The POSIX branch replaces the process (exec), so only the Windows branch can run inside a test.
    code = course.hand_over([sys.executable, "-c", "import sys; sys.exit(3)"], dict(os.environ), platform="win32")
    assert code == 3


def test_install_is_redone_only_when_a_requirement_file_is_newer(tmp_path):
    repo, venv = tmp_path / "repo", tmp_path / "venv"
    repo.mkdir()
    venv.mkdir()
    for name in course.REQUIREMENT_FILES:
        (repo / name).write_text("x")
        os.utime(repo / name, (1000, 1000))
    assert course.needs_install(venv, repo)  # no stamp yet
    (venv / course.STAMP).touch()
    os.utime(venv / course.STAMP, (2000, 2000))
    assert not course.needs_install(venv, repo)
    os.utime(repo / "requirements-data.txt", (3000, 3000))
    assert course.needs_install(venv, repo)


def test_overrides_silence_the_news_and_set_the_language():
    calm = course.lab_setting_overrides()
    assert calm["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false", "checkForUpdates": False}
    assert calm["@jupyterlab/translation-extension:plugin"]["locale"] == "default"
    assert course.lab_setting_overrides(zh=True)["@jupyterlab/translation-extension:plugin"]["locale"] == "zh_CN"


def test_overrides_are_merged_into_an_existing_file(tmp_path):
    path = tmp_path / "settings" / "overrides.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                                "@jupyterlab/apputils-extension:notification": {"doNotDisturbMode": True,
                                                                                 "fetchNews": "true"}}))
    course.write_lab_overrides(path, course.lab_setting_overrides())
    merged = json.loads(path.read_text())
    assert merged["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert merged["@jupyterlab/apputils-extension:notification"] == {
        "doNotDisturbMode": True, "fetchNews": "false", "checkForUpdates": False}


def test_lab_opens_day1_with_the_file_browser_in_notebooks(tmp_path):
    notebooks = tmp_path / "notebooks"
    (notebooks / "zh").mkdir(parents=True)
    (notebooks / course.FIRST_NOTEBOOK).write_text("{}")
    args = course.lab_arguments(notebooks)
    assert f"--ServerApp.root_dir={notebooks}" in args
    assert f"--ServerApp.file_to_run={notebooks / course.FIRST_NOTEBOOK}" in args
    with pytest.raises(course.CourseError, match=r"notebooks/zh/day1_tokenize.ipynb is missing; run without --zh"):
        course.lab_arguments(notebooks, zh=True)
    (notebooks / "zh" / course.FIRST_NOTEBOOK).write_text("{}")
    zh_day1 = notebooks / "zh" / course.FIRST_NOTEBOOK
    assert f"--ServerApp.file_to_run={zh_day1}" in course.lab_arguments(notebooks, zh=True)


def test_lab_zh_without_the_chinese_edition_stops_before_setting_up(tmp_path, monkeypatch, capsys):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setattr(course, "REPO", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(course, "setup", lambda venv: pytest.fail("set up although --zh cannot work"))
    assert course.main(["lab", "--zh"]) == 1
    assert "zh/day1_tokenize.ipynb is missing" in capsys.readouterr().out


def test_test_environment_is_offline():
    env = course.offline_env({"PATH": "/bin"})
    assert env["PATH"] == "/bin" and env["HF_HUB_OFFLINE"] == "1"
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://127.0.0.1:9"


def test_unknown_command_prints_the_usage(capsys):
    assert course.main(["serve"]) == 2
    assert "py course.py" in capsys.readouterr().err


def test_readme_and_ci_use_the_same_entry_point():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "python3 course.py test" in readme and "py course.py lab" in readme
    assert (REPO / ".ci" / "run").read_text().strip().splitlines()[-1] == "exec python3 course.py test"
