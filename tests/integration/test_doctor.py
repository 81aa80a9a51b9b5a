"""`tether doctor` against real worker and studio processes: a healthy worker, a wrong
token, nothing listening, and the studio's "Test connection" endpoint. Each checks the
exit code, the named failing check, and that no token appears in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from tests.helpers import Services, wait_until
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(120)


def doctor(*args: str, token: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    full_env |= {"TETHER_ICE_HOSTS": "loopback", **env}
    if token is not None:
        full_env["TETHER_WORKER_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "tether", "doctor", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def report_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("{"))
    return json.loads(line)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def test_a_healthy_worker_passes_every_check(services: Services) -> None:
    worker = services.worker(token="healthy-secret-token")
    proc = doctor("--worker", worker.url, "--json", token="healthy-secret-token")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = report_of(proc)
    assert report["ok"] is True and report["status"] == "ok"
    assert statuses(report) == {
        "reach": "ok", "tls": "skipped", "signaling": "ok", "ice": "ok", "media": "ok",
        "pipeline": "ok",
    }  # fmt: skip
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["ice"]["pair"] == "host" and checks["ice"]["transport"] == "udp"
    media = checks["media"]
    assert media["fps_distinct"] > 10 and media["resolution"] == "320x240"
    assert media["rtt_p50_ms"] is not None and media["round_trip_p95_ms"] is not None
    assert checks["signaling"]["max_sessions"] == 1 and checks["signaling"]["draining"] is False
    assert "passthrough" in checks["pipeline"]["pipelines"]
    assert report["verdict"].startswith("OK")
    assert "healthy-secret-token" not in proc.stdout + proc.stderr


def test_progress_lines_go_to_stderr_and_the_verdict_to_stdout(services: Services) -> None:
    worker = services.worker(token="progress-secret-token")
    proc = doctor("--worker", worker.url, "--seconds", "2", token="progress-secret-token")
    # A short test on a busy machine may see fewer frames back: a warning, still works.
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert proc.stdout.startswith(("OK: the path to", "WARN: media")), proc.stdout
    for name in ("reach", "signaling", "ice", "media", "pipeline"):
        assert name in proc.stderr
    assert "progress-secret-token" not in proc.stdout + proc.stderr


def test_a_wrong_token_is_named_as_the_token_without_printing_either(
    services: Services,
) -> None:
    worker = services.worker(token="the-right-secret")
    proc = doctor("--worker", worker.url, "--json", token="a-wrong-secret")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    report = report_of(proc)
    assert report["failed_check"] == "signaling"
    signaling = next(c for c in report["checks"] if c["name"] == "signaling")
    assert "token" in signaling["detail"] and "TETHER_WORKER_TOKEN" in signaling["fix"]
    assert statuses(report)["ice"] == statuses(report)["media"] == "skipped"
    for secret in ("the-right-secret", "a-wrong-secret"):
        assert secret not in proc.stdout + proc.stderr


def test_nothing_listening_is_named_refused_at_once() -> None:
    port = free_port()
    proc = doctor("--worker", f"http://127.0.0.1:{port}", "--json", token="unused-secret")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    report = report_of(proc)
    assert report["failed_check"] == "reach"
    assert "refused" in report["checks"][0]["detail"]
    assert report["took_s"] < 5
    assert all(c["status"] == "skipped" for c in report["checks"][1:])
    assert "unused-secret" not in proc.stdout + proc.stderr


def test_with_no_worker_it_checks_the_one_the_running_studio_is_set_to(
    services: Services,
) -> None:
    worker = services.worker(token="studio-secret-token")
    studio = services.studio(worker)
    proc = doctor(
        "--json", "--seconds", "2", token="studio-secret-token", TETHER_STUDIO_URL=studio.url
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # not a token failure
    assert report_of(proc)["worker_url"] == worker.url


async def test_the_studio_runs_the_checks_one_run_at_a_time(services: Services) -> None:
    worker = services.worker(token="page-secret-token")
    studio = services.studio(worker)
    async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:
        foreign = await http.post("/api/v1/doctor", json={}, headers={"Origin": "http://evil.test"})
        assert foreign.status_code == 403
        for bad in ({"seconds": 0}, {"seconds": "long"}, {"pipeline": ""}, {"extra": 1}):
            refused = await http.post("/api/v1/doctor", json=bad)
            assert refused.status_code == 422, (bad, refused.text)
        plain = {"Content-Type": "text/plain"}
        not_json = await http.post("/api/v1/doctor", content=b"x", headers=plain)
        assert not_json.status_code == 415
        assert (await http.get("/api/v1/doctor")).json()["run"] == 0  # none of them started
        started = await http.post("/api/v1/doctor", json={"seconds": 2})
        assert started.status_code == 202, started.text
        assert started.json()["running"] is True
        again = await http.post("/api/v1/doctor", json={})
        assert again.status_code == 409 and "already running" in again.json()["message"]
        seen: list[int] = []

        async def done() -> dict[str, Any] | None:
            state = (await http.get("/api/v1/doctor")).json()
            seen.append(len(state["checks"]))
            return state if not state["running"] else None

        state = await wait_until(done, 40, "the studio's doctor run to finish")
    result = state["result"]
    assert result["status"] in ("ok", "warn"), result  # a 2 s test: fps may dip
    assert all(c["status"] in ("ok", "skipped") for c in state["checks"][:4]), state
    assert [c["name"] for c in state["checks"]] == list(state["stages"])
    assert len(set(seen)) > 1  # progress showed check by check
    assert "page-secret-token" not in json.dumps(state)
