"""Suite-wide fixtures: the network is denied unless a test is marked ``network``.

In-process sockets may only connect to loopback; subprocesses (pip, uv, dvc, kaggle) get a dead
HTTP(S) proxy on 127.0.0.1 with loopback exempted, so any attempt to reach the internet fails fast.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DEAD_PROXY = "http://127.0.0.1:9"
_real_connect = socket.socket.connect


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True  # AF_UNIX and friends


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"network denied in tests (mark the test 'network'): {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _deny_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # urlopen's global opener freezes the proxy environment of the first test that used it.
    urllib.request.install_opener(None)  # type: ignore[arg-type]
    if request.node.get_closest_marker("network"):
        yield
        return
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, DEAD_PROXY)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    yield


@pytest.fixture
def repo() -> Path:
    """The project checkout."""
    return REPO
