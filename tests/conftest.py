"""Shared test set-up: no test may reach the network, and every test starts seeded."""
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
