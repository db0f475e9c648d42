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


def make_course(repo: Path) -> Path:
    """A tiny course: two English notebooks, one Chinese, a solutions notebook and a figure."""
    for name in ("day1_tokenize.ipynb", "day2_embed.ipynb", "zh/day1_tokenize.ipynb", "solutions/day1_solutions.ipynb"):
        (repo / "notebooks" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "notebooks" / name).write_text(f"course {name} v1")
    (repo / "notebooks" / "conftest.py").write_text("# tests only")
    (repo / "figures").mkdir()
    (repo / "figures" / "pipeline_day1.png").write_bytes(b"png v1")
    return repo


def test_lab_opens_day1_of_the_learners_copy_in_a_workspace_per_edition(tmp_path):
    root = tmp_path / "my-course"
    (root / "notebooks" / "zh").mkdir(parents=True)
    (root / "notebooks" / course.FIRST_NOTEBOOK).write_text("{}")
    args = course.lab_arguments(root, euid=1000)
    assert f"--ServerApp.root_dir={root}" in args
    assert "--LabApp.default_url=/lab/workspaces/en/tree/notebooks/day1_tokenize.ipynb" in args
    assert "--allow-root" not in args
    with pytest.raises(course.CourseError, match=r"notebooks/zh/day1_tokenize.ipynb is missing; run without --zh"):
        course.lab_arguments(root, zh=True)
    (root / "notebooks" / "zh" / course.FIRST_NOTEBOOK).write_text("{}")
    assert "--LabApp.default_url=/lab/workspaces/zh/tree/notebooks/zh/day1_tokenize.ipynb" in \
        course.lab_arguments(root, zh=True, euid=1000)


def test_lab_as_root_passes_allow_root(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / course.FIRST_NOTEBOOK).write_text("{}")
    assert "--allow-root" in course.lab_arguments(tmp_path, euid=0)
    assert "--allow-root" not in course.lab_arguments(tmp_path, euid=501)


def test_first_start_copies_notebooks_and_figures_but_no_test_files(tmp_path):
    repo, copy = make_course(tmp_path / "repo"), tmp_path / "my-course"
    report = course.sync_my_course(repo, copy)
    assert sorted(report.added) == ["day1_tokenize.ipynb", "day2_embed.ipynb", "solutions/day1_solutions.ipynb",
                                    "zh/day1_tokenize.ipynb"]
    assert (copy / "notebooks" / "zh" / "day1_tokenize.ipynb").read_text() == "course zh/day1_tokenize.ipynb v1"
    assert not (copy / "notebooks" / "conftest.py").exists()
    assert (copy / "figures" / "pipeline_day1.png").read_bytes() == b"png v1"
    assert (copy / course.ANSWERS).is_dir()
    assert course.copy_lines(report, "my-course")[0].startswith("copied 4 notebooks into my-course/notebooks")
    assert course.copy_lines(course.sync_my_course(repo, copy), "my-course") == []  # nothing new: silent


def test_an_update_never_overwrites_the_learners_work(tmp_path):
    repo, copy = make_course(tmp_path / "repo"), tmp_path / "my-course"
    course.sync_my_course(repo, copy)
    mine = copy / "notebooks" / "day1_tokenize.ipynb"
    mine.write_text("my answers")                                              # the learner works on day 1
    (copy / course.ANSWERS / "day1.py").write_text("kept answer")
    for name in ("day1_tokenize.ipynb", "day2_embed.ipynb"):                    # the course updates day 1 and day 2
        (repo / "notebooks" / name).write_text(f"course {name} v2")
    (repo / "notebooks" / "day3_attention.ipynb").write_text("course day 3")    # ... and adds day 3
    (repo / "figures" / "pipeline_day1.png").write_bytes(b"png v2")
    report = course.sync_my_course(repo, copy)
    assert mine.read_text() == "my answers"
    assert (copy / course.ANSWERS / "day1.py").read_text() == "kept answer"
    assert report.outdated == ["day1_tokenize.ipynb"] and report.updated == ["day2_embed.ipynb"]
    assert report.added == ["day3_attention.ipynb"]
    assert (copy / "notebooks" / "day2_embed.ipynb").read_text() == "course day2_embed.ipynb v2"  # untouched: follows
    assert (copy / "figures" / "pipeline_day1.png").read_bytes() == b"png v2"   # figures are the course's
    lines = course.copy_lines(report, "my-course")
    assert len(lines) == 3 and "kept your work in day1_tokenize.ipynb; the course has a newer version" in lines[2]
    # said again at the next start, until the learner takes the new version (deleting or renaming theirs)
    assert course.sync_my_course(repo, copy).outdated == ["day1_tokenize.ipynb"]
    mine.rename(mine.with_name("day1_mine.ipynb"))
    assert course.sync_my_course(repo, copy).added == ["day1_tokenize.ipynb"]
    assert mine.read_text() == "course day1_tokenize.ipynb v2"


def test_the_learners_copy_is_never_tested_nor_committed():
    """pytest collects only testpaths (the copy is not among them) and git ignores the copy."""
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    testpaths = pyproject.split("testpaths = ")[1].split("\n")[0]
    assert course.MY_COURSE not in testpaths and '"notebooks"' in testpaths
    assert f"/{course.MY_COURSE}/" in (REPO / ".gitignore").read_text().splitlines()


def test_the_link_to_day1_carries_the_token():
    path = "/lab/workspaces/zh/tree/notebooks/zh/day1_tokenize.ipynb"
    assert course.day1_link(path, 8890, "abc") == f"http://localhost:8890{path}?token=abc"
    assert course.day1_link(path, 8890, "abc", ip="10.0.0.5").startswith("http://10.0.0.5:8890/lab/")


def test_option_value_reads_both_spellings():
    assert course.option_value(["--port=9000"], "port") == "9000"
    assert course.option_value(["--no-browser", "--port", "9001"], "port") == "9001"
    assert course.option_value(["--ServerApp.ip=0.0.0.0"], "ip") == "0.0.0.0"
    assert course.option_value(["--no-browser"], "port") is None


def test_free_port_skips_a_busy_one():
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert course.free_port(first=taken, tries=5) != taken


def test_lab_prints_the_link_and_how_to_stop_then_starts_jupyterlab_in_the_copy(tmp_path, monkeypatch, capsys):
    repo = make_course(tmp_path / "repo")
    monkeypatch.setattr(course, "REPO", repo)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("JUPYTER_TOKEN", "tok")
    monkeypatch.delenv("COURSE_MY_DIR", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(course, "use_chinese_interface", lambda python, venv: None)
    started = {}
    monkeypatch.setattr(course, "hand_over", lambda command, env: started.update(command=command, env=env) or 0)
    assert course.start_lab(Path("py"), Path(".venv"), zh=True, args=["--port=9123"]) == 0
    out = capsys.readouterr().out
    assert "day 1: http://localhost:9123/lab/workspaces/zh/tree/notebooks/zh/day1_tokenize.ipynb?token=tok" in out
    assert "Ctrl-C twice" in out and "server stop 9123" in out
    assert f"--ServerApp.root_dir={repo / 'my-course'}" in started["command"]
    assert started["env"]["GPTLIB_WORKSPACE"] == str(repo / "my-course" / "answers")
    assert started["env"]["GOMP_SPINCOUNT"] == "1000"
    assert (repo / "my-course" / "notebooks" / "zh" / "day1_tokenize.ipynb").exists()


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


def test_kernels_let_idle_threads_sleep_unless_the_learner_chose():
    assert course.shared_cpu_env({"PATH": "/bin"}) == {"PATH": "/bin", "GOMP_SPINCOUNT": "1000"}
    assert course.shared_cpu_env({"GOMP_SPINCOUNT": "5"}) == {"GOMP_SPINCOUNT": "5"}
    assert course.shared_cpu_env({"OMP_WAIT_POLICY": "ACTIVE"}) == {"OMP_WAIT_POLICY": "ACTIVE"}  # theirs wins


def test_unknown_command_prints_the_usage(capsys):
    assert course.main(["serve"]) == 2
    assert "py course.py" in capsys.readouterr().err


def test_readme_and_ci_use_the_same_entry_point():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "python3 course.py test" in readme and "py course.py lab" in readme
    assert (REPO / ".ci" / "run").read_text().strip().splitlines()[-1] == "exec python3 course.py test"


def test_the_kernel_and_course_py_agree_on_where_kept_answers_live(monkeypatch, tmp_path):
    """Issue 22's keep mechanism writes to gptlib.course.notebook.answers_dir(): beside the learner's copy."""
    from gptlib.course import notebook

    assert notebook.MY_COURSE == course.MY_COURSE
    monkeypatch.delenv("GPTLIB_WORKSPACE", raising=False)
    assert notebook.answers_dir() == REPO / course.MY_COURSE / course.ANSWERS  # in the course's checkout
    monkeypatch.setenv("GPTLIB_WORKSPACE", str(tmp_path / "kept"))            # as course.py lab sets it
    assert notebook.answers_dir() == tmp_path / "kept"


def test_figures_dir_is_found_from_every_notebook_folder(tmp_path, monkeypatch):
    from gptlib.course.notebook import figures_dir

    (tmp_path / "my-course" / "figures").mkdir(parents=True)
    (tmp_path / "my-course" / "notebooks" / "zh").mkdir(parents=True)
    for folder in ("my-course/notebooks", "my-course/notebooks/zh", "my-course"):
        monkeypatch.chdir(tmp_path / folder)
        assert figures_dir() == tmp_path / "my-course" / "figures"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    if not any((p / "figures").is_dir() for p in tmp_path.parents):  # a machine whose / holds a figures/ folder
        with pytest.raises(FileNotFoundError, match="no figures/ folder"):
            figures_dir()
