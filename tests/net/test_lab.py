"""The lab's faults do what they say, measured with plain sockets in its namespaces."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from tests.net.lab import STUDIO_ADDR, WORKER_NAME, Lab

pytestmark = pytest.mark.timeout(90)


def udp_through(lab: Lab, count: int = 200, to: str | None = None) -> int:
    """Send ``count`` datagrams studio -> worker; how many arrived."""
    with lab.entered(lab.worker_ns):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("0.0.0.0", 0))
    port = rx.getsockname()[1]
    rx.settimeout(0.3)
    with lab.entered(lab.studio_ns):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(count):
            tx.sendto(str(i).encode(), (to or lab.worker_addr, port))
            time.sleep(0.001)
        got = 0
        while True:
            try:
                rx.recv(100)
                got += 1
            except TimeoutError:
                return got
    finally:
        rx.close()
        tx.close()


def tcp_transfer_s(lab: Lab, size: int) -> float:
    """Seconds to send ``size`` bytes studio -> worker over TCP, until the worker has all."""
    with lab.entered(lab.worker_ns):
        server = socket.create_server((lab.worker_addr, 0))
    port = server.getsockname()[1]
    server.settimeout(10)
    with lab.entered(lab.studio_ns):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        start = time.monotonic()
        client.settimeout(10)
        client.connect((lab.worker_addr, port))
        conn, _ = server.accept()
        conn.settimeout(10)
        client.sendall(b"x" * size)
        got = 0
        while got < size:
            got += len(conn.recv(65536))
        conn.close()
        return time.monotonic() - start
    finally:
        client.close()
        server.close()


def connect_s(lab: Lab) -> float:
    """One TCP handshake from the studio namespace to the worker (a refusal is fine)."""
    with lab.entered(lab.studio_ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    start = time.monotonic()
    try:
        sock.connect((lab.worker_addr, 9))
    except ConnectionRefusedError:
        pass
    finally:
        sock.close()
    return time.monotonic() - start


def test_the_lab_is_isolated_and_faults_shape_its_path(lab: Lab) -> None:
    assert udp_through(lab, 100) == 100
    assert connect_s(lab) < 0.05

    lab.loss(0.5)
    got = udp_through(lab, 400)
    assert 120 < got < 280, got  # about half, each way counted once
    assert lab.dropped() > 100
    lab.loss(0)

    lab.blackhole(True)
    assert udp_through(lab, 50) == 0
    lab.blackhole(False)
    assert udp_through(lab, 50) == 50

    lab.delay(100)
    rtt = connect_s(lab)
    assert 0.19 < rtt < 0.5, rtt  # SYN and SYN-ACK, each held 100 ms
    lab.delay(None)
    assert connect_s(lab) < 0.05

    fast = tcp_transfer_s(lab, 60_000)
    lab.cap(400)
    capped = tcp_transfer_s(lab, 60_000)
    lab.cap(None)
    assert capped > 0.9 and capped > 5 * fast, (fast, capped)  # 480 kbit at 400 kbit/s


def test_worker_address_change_moves_its_name(lab: Lab) -> None:
    def resolved() -> str:
        out = subprocess.run(
            ["ip", "netns", "exec", lab.studio_ns, "getent", "hosts", WORKER_NAME],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.split()[0]

    assert resolved() == lab.worker_addr
    old = lab.worker_addr
    lab.move_worker("198.18.2.3")
    assert resolved() == "198.18.2.3"
    assert udp_through(lab, 20) == 20
    assert udp_through(lab, 20, to=old) == 0  # the old address is gone


def test_the_studio_namespace_has_no_route_out(lab: Lab) -> None:
    routes = subprocess.run(
        ["ip", "netns", "exec", lab.router_ns, "ip", "route"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "default" not in routes  # the router knows only the lab's two subnets
    assert STUDIO_ADDR.rsplit(".", 1)[0] in routes
