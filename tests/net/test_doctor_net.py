"""`tether doctor` across the network lab, run in the studio's namespace against the
worker's: a port whose SYNs are dropped, UDP dropped with and without TURN, a capped
path, a TURN server that does not answer, and no route at all. Each checks the exit
code, the named check, and that no token shows."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.net.lab import ROUTER_W, WORKER_PORT, Lab
from tests.skips import require_tool

pytestmark = pytest.mark.timeout(150)


def run_doctor(
    lab: Lab, *args: str, deadline_s: float = 60, worker: str | None = None
) -> tuple[int, dict[str, Any], str]:
    """The doctor in the studio namespace, as a user there runs it: exit code, report,
    everything it printed."""
    url = worker or f"http://worker.tether-lab:{WORKER_PORT}"
    proc = lab.spawn(
        "doctor",
        lab.studio_ns,
        [sys.executable, "-m", "tether", "doctor", "--worker", url, "--json", *args],
        {"TETHER_WORKER_TOKEN": lab.token},
    )
    try:
        code = proc.proc.wait(timeout=deadline_s)
    finally:
        proc.stop()
    output = proc.output()
    line = next(x for x in reversed(output.splitlines()) if x.startswith("{"))
    return code, json.loads(line), output


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def test_a_port_whose_syns_are_dropped_is_named_timed_out_within_seconds(lab: Lab) -> None:
    lab.worker()
    lab.drop_syns(WORKER_PORT)
    started = time.monotonic()
    code, report, output = run_doctor(lab)
    assert code == 2, output
    assert report["failed_check"] == "reach"
    assert "timed out" in check(report, "reach")["detail"]
    assert "firewall" in check(report, "reach")["fix"]
    assert report["took_s"] < 6 and time.monotonic() - started < 20
    assert lab.held() > 0  # the SYNs really were dropped
    assert lab.token not in output


def test_udp_dropped_without_turn_says_turn_is_needed(lab: Lab) -> None:
    lab.worker()
    lab.block_forwarded_udp()
    code, report, output = run_doctor(lab)
    assert code == 2, output
    assert report["failed_check"] == "ice"
    ice = check(report, "ice")
    assert "UDP" in ice["detail"] and "blocked" in ice["detail"]
    assert "TURN" in ice["fix"] and "TETHER_TURN_URLS" in ice["fix"]
    assert check(report, "media")["status"] == "skipped"
    assert check(report, "signaling")["status"] == "ok"
    assert report["took_s"] < 20
    assert lab.token not in output


def test_udp_dropped_with_coturn_passes_over_the_relay(lab: Lab) -> None:
    require_tool("turnserver", "coturn")
    secret = "lab-turn-secret"
    lab.turn_server(secret)
    lab.block_forwarded_udp()
    lab.worker(
        TETHER_TURN_URLS=f"turn:{ROUTER_W}:3478?transport=udp",
        TETHER_TURN_SECRET=secret,
        TETHER_TURN_TTL_S="600",
    )
    code, report, output = run_doctor(lab)
    assert code in (0, 1), output
    ice = check(report, "ice")
    assert ice["status"] == "ok" and ice["pair"] == "relay", ice
    assert check(report, "media")["status"] in ("ok", "warn")
    assert lab.held() > 0  # the direct checks were tried and dropped
    assert lab.token not in output and secret not in output


def test_a_capped_path_is_a_warning_that_names_bandwidth(lab: Lab) -> None:
    lab.worker()
    lab.cap(300)
    code, report, output = run_doctor(lab)
    assert code == 1, output
    assert report["failed_check"] == "media"
    media = check(report, "media")
    assert media["limited_by"] == "bandwidth", media
    assert "bandwidth" in media["detail"] and media["fix"]
    assert lab.cap_dropped() >= 0
    assert lab.token not in output


def test_a_turn_server_that_does_not_answer_is_named(lab: Lab) -> None:
    """TURN configured, but nothing runs at its address: the relay test names it."""
    lab.block_forwarded_udp()
    lab.worker(
        TETHER_TURN_URLS=f"turn:{ROUTER_W}:3478?transport=udp",
        TETHER_TURN_SECRET="unused-turn-secret",
    )
    code, report, output = run_doctor(lab)
    assert code == 2, output
    assert report["failed_check"] == "ice"
    ice = check(report, "ice")
    assert "TURN server" in ice["detail"] and "relay" in ice["detail"], ice
    assert "TURN" in ice["fix"] and "unused-turn-secret" not in output
    assert report["took_s"] < 20
    assert lab.token not in output


def test_an_unreachable_network_is_named_unreachable_at_once(lab: Lab) -> None:
    """The studio's side has no route to the worker (its default route is gone)."""
    lab.worker()
    lab._ns(lab.studio_ns, "ip", "route", "del", "default")
    code, report, output = run_doctor(lab)
    assert code == 2, output
    assert report["failed_check"] == "reach"
    reach = check(report, "reach")
    assert "unreachable" in reach["detail"] and "route" in reach["fix"]
    assert report["took_s"] < 2
    assert lab.token not in output


SILENT_DNS = """
import socket
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.53", 53))
tcp = socket.socket()
tcp.bind(("127.0.0.53", 53))
tcp.listen()
while True:
    udp.recvfrom(2048)
"""


def test_a_dns_server_that_never_answers_is_named_within_seconds(lab: Lab) -> None:
    """The resolver keeps asking for its own timeouts (10 s and more); the verdict (and
    the exit) must not wait for it."""
    resolv = Path(f"/etc/netns/{lab.studio_ns}/resolv.conf")  # `ip netns exec` mounts it
    resolv.write_text("nameserver 127.0.0.53\noptions timeout:10 attempts:2\n")
    try:
        lab.spawn("silent-dns", lab.studio_ns, [sys.executable, "-c", SILENT_DNS])
        url = "http://worker.nowhere.tether-lab:8765"
        started = time.monotonic()
        code, report, output = run_doctor(lab, deadline_s=40, worker=url)
        took = time.monotonic() - started
    finally:
        resolv.unlink()
    assert code == 2, output
    assert report["failed_check"] == "reach"
    reach = check(report, "reach")
    assert "resolving" in reach["detail"] and "DNS" in reach["fix"], reach
    # The resolver alone asks for 20 s; the doctor's own deadline is 3 s.
    assert took < 14, f"the doctor took {took:.1f} s to exit"
    assert lab.token not in output
