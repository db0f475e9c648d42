"""Shared test set-up: no test may reach the network, and the `device` fixture runs a test on every device here."""
from __future__ import annotations

import ipaddress
import socket

import pytest

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise RuntimeError(f"test tried to reach the network ({host}); tests must run offline")
        except ValueError:  # a host name
            if host not in ("localhost",):
                raise RuntimeError(f"test tried to reach the network ({host}); tests must run offline")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def chinese_edition():
    """The Chinese edition's language (``set_language("zh")``) for one test, English again afterwards."""
    from gptlib.course.exercises import set_language

    set_language("zh")
    yield
    set_language("en")


# --------------------------------------------------------------------------- the device fixture
def pytest_generate_tests(metafunc):
    """A test that takes ``device`` runs once per device this machine has: always ``cpu``, and
    also ``cuda`` and ``mps`` where present, so a GPU machine runs the same tests on its GPU.
    The list comes from ``gptlib.runtime.available_devices``, the one place that knows it. A test
    that parametrizes ``device`` itself keeps its own values."""
    if "device" in metafunc.fixturenames and not _parametrizes(metafunc, "device"):
        from gptlib.runtime import available_devices

        names = available_devices()
        metafunc.parametrize("device", names, ids=names, indirect=True)


@pytest.fixture
def device(request):
    """The ``torch.device`` to run on (see ``pytest_generate_tests``): ``cpu``, ``cuda`` or ``mps``."""
    import torch

    return torch.device(request.param)


def _parametrizes(metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return True
    return False


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A learner's workspace (``GPTLIB_WORKSPACE``: progress and kept answers) in ``tmp_path``, verdicts in English."""
    from gptlib.course.exercises import set_language

    monkeypatch.setenv("GPTLIB_WORKSPACE", str(tmp_path))
    set_language("en")
    yield tmp_path
    set_language("en")
