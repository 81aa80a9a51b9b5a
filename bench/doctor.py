"""Doctor benchmark: `tether doctor` as a user runs it, in the studio's namespace of
the network lab against a worker in its own, with faults in the router. One JSON line
per case. Needs root (namespaces, iptables, tc; coturn for the relay case).

    sudo .venv/bin/python -m bench.doctor [--cases healthy,wrong-token,...] [--runs 20]

Cases, each with its target (issue 21):
  healthy      a clean path: verdict (exit 0) within 15 s
  wrong-token  named (signaling) within 10 s
  refused      nothing listens on the port: named (reach) within 10 s
  syn-dropped  the port's SYNs are dropped: named (reach) within 10 s
  udp-blocked  no UDP crosses, no TURN: named (ice) within 20 s
  udp-turn     no UDP crosses, coturn configured: passes over the relay
  capped       a 300 kbit/s cap: a warning (exit 1) naming bandwidth
  clean        --runs runs on a clean path: false `fail` verdicts (target 0 in 20)
  loss-5       --runs runs at 5% random loss each way: false `fail` verdicts (target 0 in 20)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.net.lab import ROUTER_W, WORKER_ADDR, WORKER_NAME, WORKER_PORT, Lab

# A second worker, one that hands out TURN. The UDP-blocked case shares the first: its
# test session never connects, and the worker drops such a session (its slot free again)
# as soon as the doctor's signaling socket closes.
TURN_PORT = WORKER_PORT + 1
TURN_SECRET = "bench-turn-secret"
DEFAULT = "healthy,wrong-token,refused,syn-dropped,udp-blocked,udp-turn,capped,clean,loss-5"
# case: (expected exit codes, expected failing check, target seconds)
EXPECT: dict[str, tuple[set[int], str | None, float | None]] = {
    "healthy": ({0}, None, 15.0),
    "wrong-token": ({2}, "signaling", 10.0),
    "refused": ({2}, "reach", 10.0),
    "syn-dropped": ({2}, "reach", 10.0),
    "udp-blocked": ({2}, "ice", 20.0),
    "udp-turn": ({0, 1}, None, 20.0),
    "capped": ({1}, "media", None),
}


def wait_free(lab: Lab, port: int, deadline_s: float = 45.0) -> float:
    """Wait until the worker has no session in use (a test session that ended on a lossy
    path holds its slot until the worker notices its peer is gone); the seconds waited."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {lab.token}"}
    with lab.entered(lab.worker_ns), httpx.Client(timeout=2) as http:
        while time.monotonic() - started < deadline_s:
            with contextlib.suppress(httpx.HTTPError):
                load = http.get(f"http://127.0.0.1:{port}/api/v1/load", headers=headers)
                if load.status_code == 200 and load.json()["sessions"] == 0:
                    break
            time.sleep(0.2)
    return time.monotonic() - started


def doctor(lab: Lab, port: int = WORKER_PORT, token: str | None = None) -> dict[str, Any]:
    """One doctor run from the studio namespace: its exit code, report and wall time."""
    waited = wait_free(lab, port) if port != 9 else 0.0
    argv = [sys.executable, "-m", "tether", "doctor", "--json"]
    argv += ["--worker", f"http://{WORKER_NAME}:{port}"]
    started = time.monotonic()
    proc = lab.spawn("doctor", lab.studio_ns, argv, {"TETHER_WORKER_TOKEN": token or lab.token})
    try:
        code = proc.proc.wait(timeout=90)
    finally:
        proc.stop()
        lab.processes.remove(proc)
    wall = time.monotonic() - started
    lines = [x for x in proc.output().splitlines() if x.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    leaked = (token or lab.token) in proc.output()
    return {"code": code, "report": report, "wall_s": wall, "leaked": leaked, "waited": waited}


def set_fault(lab: Lab, case: str) -> tuple[int, str | None]:
    """Put the case's fault in place; the port and token its doctor run uses."""
    lab.clear()
    if case == "wrong-token":
        return WORKER_PORT, "not-the-lab-token"
    if case == "refused":
        return 9, None
    if case == "syn-dropped":
        lab.drop_syns(WORKER_PORT)
    elif case in ("udp-blocked", "udp-turn"):
        lab.block_forwarded_udp()
    elif case == "capped":
        lab.cap(300)
    elif case == "loss-5":
        lab.loss(0.05)
    return (TURN_PORT if case == "udp-turn" else WORKER_PORT), None


def summarize(case: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    codes = [r["code"] for r in runs]
    named = [r["report"].get("failed_check") for r in runs]
    walls = [r["wall_s"] for r in runs]
    line: dict[str, Any] = {
        "case": case,
        "runs": len(runs),
        "exit_codes": codes,
        "named": sorted({str(n) for n in named}),
        "verdict_s_p50": round(statistics.median(walls), 2),
        "verdict_s_max": round(max(walls), 2),
        "report_s_max": round(max(r["report"].get("took_s", 0.0) for r in runs), 2),
        "token_leaked": any(r["leaked"] for r in runs),
        "waited_for_free_worker_s_max": round(max(r["waited"] for r in runs), 1),
        "verdicts": sorted({r["report"].get("verdict", "")[:160] for r in runs}),
    }
    if case in EXPECT:
        codes_ok, check, target = EXPECT[case]
        line["target_s"] = target
        line["met"] = (
            all(c in codes_ok for c in codes)
            and (check is None or all(n == check for n in named))
            and (target is None or max(walls) <= target)
        )
    else:  # clean, loss-5: how many runs said fail
        line["false_fails"] = sum(1 for c in codes if c == 2)
        line["warns"] = sum(1 for c in codes if c == 1)
        line["met"] = line["false_fails"] == 0
    return line


def extra_worker(lab: Lab, port: int, **env: str) -> None:
    argv = [sys.executable, "-m", "tether", "worker", "--host", "0.0.0.0", "--port", str(port)]
    env = {"TETHER_WORKER_TOKEN": lab.token, **env}
    proc = lab.spawn(f"worker-{port}", lab.worker_ns, argv, env)
    lab._wait_healthy(proc, lab.worker_ns, f"http://{WORKER_ADDR}:{port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=20, help="runs of clean and loss-5")
    parser.add_argument("--repeat", type=int, default=1, help="runs of every other case")
    opts = parser.parse_args()
    cases = [c.strip() for c in opts.cases.split(",") if c.strip()]
    with tempfile.TemporaryDirectory() as tmp, Lab(Path(tmp)) as lab:
        lab.worker()
        if "udp-turn" in cases:
            lab.turn_server(TURN_SECRET)
            extra_worker(
                lab,
                TURN_PORT,
                TETHER_TURN_URLS=f"turn:{ROUTER_W}:3478?transport=udp",
                TETHER_TURN_SECRET=TURN_SECRET,
            )
        for case in cases:
            port, token = set_fault(lab, case)
            count = opts.runs if case in ("clean", "loss-5") else opts.repeat
            runs = [doctor(lab, port, token) for _ in range(count)]
            print(json.dumps(summarize(case, runs)), flush=True)
        lab.clear()


if __name__ == "__main__":
    main()
