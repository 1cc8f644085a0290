"""Port-in-use detection with real sockets on the loopback interface."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.broker import PortInUseError, find_free_base_port, port_in_use, ports
from exchange.broker.ports import check_ports_free, ephemeral_floor


@pytest.fixture
def listening() -> Iterator[int]:
    """A port held by a listening socket for the duration of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_listening_port_is_in_use(listening: int) -> None:
    assert port_in_use(listening)


def test_a_released_port_is_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    assert not port_in_use(port)


def test_check_names_the_taken_port(listening: int) -> None:
    with pytest.raises(PortInUseError) as caught:
        check_ports_free([listening])

    assert caught.value.port == listening
    assert f"port {listening} on 127.0.0.1 is already in use" in caught.value.diagnostics()
    assert "--port" in caught.value.diagnostics()
    assert "\n" not in caught.value.diagnostics()


def test_free_base_port_skips_a_taken_range(listening: int) -> None:
    # The OS picks ``listening`` from its ephemeral range, which can lie above the default
    # ``stop``: search a window around it.
    base = find_free_base_port(3, start=listening - 1, stop=min(listening + 1000, 65535))

    assert not any(port_in_use(p) for p in range(base, base + 6))
    assert not base <= listening < base + 6


@pytest.mark.parametrize("port", [0, 70000])
def test_port_numbers_are_checked(port: int) -> None:
    with pytest.raises(ValueError, match="expected 1-65535"):
        port_in_use(port)


def test_ephemeral_floor_is_read_from_the_kernel_range(tmp_path: Path) -> None:
    source = tmp_path / "ip_local_port_range"
    source.write_text("40000\t60999\n")
    assert ephemeral_floor(source) == 40000
    assert ephemeral_floor(tmp_path / "missing") == 32768  # Linux's default
    source.write_text("garbage\n")
    assert ephemeral_floor(source) == 32768


def test_free_base_port_stays_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch) -> None:
    # A node's port inside the ephemeral range can become some client's local port while the
    # node is down; the search must end before that range.
    monkeypatch.setattr(ports, "ephemeral_floor", lambda: 29_200)
    base = find_free_base_port(3, start=29_092)
    assert base + 6 <= 29_200
    monkeypatch.setattr(ports, "ephemeral_floor", lambda: 29_097)
    with pytest.raises(PortInUseError):
        find_free_base_port(3, start=29_092)  # no room for 6 ports below the floor
