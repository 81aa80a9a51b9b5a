"""More of `tether doctor` against real processes: an https worker (its CA named, days
to expiry; untrusted without TETHER_CA_FILE), a cold pipeline (its load timed), a
pipeline the worker lacks, the studio's test while its own stream holds the slot, and a
studio closed mid-test (its run is cancelled: no task or peer left)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn

from tests.helpers import Services, wait_until
from tests.integration.slow_pipeline import plugin_env
from tests.integration.test_clean_close import open_peer_connections
from tests.integration.test_doctor import doctor, report_of
from tests.integration.test_tls import _tls_service
from tether.config import StudioSettings
from tether.studio.app import create_studio_app
from tether.tools.probe import FrameSink, NumberedSource, StudioClient
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(120)


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


@pytest.fixture
def tls_worker(services: Services, tmp_path: Path):
    authority = trustme.CA(organization_name="Doctor Test CA")
    cert = authority.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    authority.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    args = ["worker", "--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file)]
    worker = _tls_service(services, "worker", args, {"TETHER_WORKER_TOKEN": "tls-doc"}, ca_file)
    return worker, ca_file


def test_an_https_worker_names_its_ca_and_days_left(tls_worker) -> None:
    worker, ca_file = tls_worker
    proc = doctor("--worker", worker.url, "--json", "--seconds", "2", token="tls-doc",
                  TETHER_CA_FILE=str(ca_file))  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    tls = check(report_of(proc), "tls")
    assert tls["status"] == "ok", tls
    assert "Doctor Test CA" in tls["issuer"] and tls["days_left"] > 14
    assert "tls-doc" not in proc.stdout + proc.stderr


def test_an_https_worker_from_an_unknown_ca_fails_tls_naming_the_ca_file(tls_worker) -> None:
    worker, _ = tls_worker
    proc = doctor("--worker", worker.url, "--json", token="tls-doc")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    report = report_of(proc)
    assert report["failed_check"] == "tls"
    assert "not trusted" in check(report, "tls")["detail"]
    assert "TETHER_CA_FILE" in check(report, "tls")["fix"]
    assert check(report, "signaling")["status"] == "skipped"
    assert "tls-doc" not in proc.stdout + proc.stderr


def test_a_cold_pipeline_is_named_with_its_load_time(services: Services, tmp_path: Path) -> None:
    worker = services.worker(token="cold-secret", **plugin_env(tmp_path / "plugins"))
    proc = doctor("--worker", worker.url, "--json", "--pipeline", "slow_load", "--seconds", "2",
                  token="cold-secret")  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    pipeline = check(report_of(proc), "pipeline")
    assert pipeline["chosen"] == "slow_load" and pipeline["cold"] is True, pipeline
    assert pipeline["load_s"] >= 2.0 and "was cold, loaded in" in pipeline["detail"]
    assert "cold-secret" not in proc.stdout + proc.stderr


def test_a_pipeline_the_worker_lacks_fails_the_pipeline_check(services: Services) -> None:
    worker = services.worker(token="lack-secret")
    proc = doctor("--worker", worker.url, "--json", "--pipeline", "nope", "--seconds", "2",
                  token="lack-secret")  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    report = report_of(proc)
    assert report["failed_check"] == "pipeline"
    assert "no pipeline 'nope'" in check(report, "pipeline")["detail"]
    assert check(report, "media")["status"] == "ok"  # the path itself was tested


async def test_the_studios_test_skips_media_while_its_own_stream_holds_the_slot(
    services: Services,
) -> None:
    worker = services.worker(token="own-secret")
    studio = services.studio(worker)
    source = NumberedSource(128, 128, fps=15)
    client = StudioClient(studio.url, source, FrameSink(source=source, keep_rgb=False))
    try:
        await client.start({"pipeline": "passthrough"})
        async with httpx.AsyncClient(base_url=studio.url, timeout=10) as http:

            async def streaming() -> bool:
                status = (await http.get("/api/v1/cloud/status")).json()
                return bool(status["webrtc_connected"])

            await wait_until(streaming, 20, "the studio's stream connected")
            assert (await http.post("/api/v1/doctor", json={})).status_code == 202

            async def done() -> dict[str, Any] | None:
                state = (await http.get("/api/v1/doctor")).json()
                return None if state["running"] else state

            state = await wait_until(done, 30, "the doctor run to finish")
    finally:
        await client.close()
    result = state["result"]
    assert result["exit_code"] == 1, json.dumps(result)[:2000]
    signaling = check(result, "signaling")
    assert signaling["status"] == "warn" and "own stream" in signaling["detail"]
    assert check(result, "media")["status"] == "skipped"
    assert "own-secret" not in json.dumps(state)


async def test_a_studio_closed_mid_test_leaves_no_task_or_peer_behind(services: Services) -> None:
    worker = services.worker(token="close-secret")
    port = free_port()
    settings = StudioSettings(port=port, worker_url=worker.url, worker_token="close-secret")
    app = create_studio_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, 10, "studio started")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        started = await http.post("/api/v1/doctor", json={"seconds": 10})
        assert started.status_code == 202, started.text

        async def measuring() -> bool:
            return (await http.get("/api/v1/doctor")).json()["current"] == "media"

        await wait_until(measuring, 20, "the test session's media check running")
    app.state.begin_shutdown()
    server.should_exit = True
    await asyncio.wait_for(serving, 15)
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == [], [t.get_name() for t in leftover]
    assert open_peer_connections() == []
