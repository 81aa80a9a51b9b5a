"""TLS between studio and worker, with a throwaway CA (trustme): the studio verifies
an https worker against TETHER_CA_FILE, and refuses one it cannot verify."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import httpx
import pytest
import trustme

from tests.helpers import Service, Services, spawn, wait_until
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(90)

TOKEN = "tls-test-token"


@pytest.fixture
def ca(tmp_path: Path) -> tuple[trustme.CA, Path, Path, Path]:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    authority.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return authority, ca_file, cert_file, key_file


def _tls_service(
    services: Services, name: str, args: list[str], env: dict[str, str], ca_file: Path
) -> Service:
    port = free_port()
    log = services.tmp_path / f"{name}-{port}.log"
    proc = spawn(name, [*args, "--port", str(port)], port, log, env)
    service = Service(name, f"https://127.0.0.1:{port}", port, proc, log, env.get("T"))
    services.started.append(service)
    context = ssl.create_default_context(cafile=str(ca_file))

    def healthy() -> bool:
        try:
            return httpx.get(f"{service.url}/health", verify=context, timeout=1).is_success
        except httpx.HTTPError:
            return False

    deadline = time.monotonic() + 30
    while not healthy():
        assert proc.poll() is None, service.output()
        assert time.monotonic() < deadline, "TLS service did not start"
        time.sleep(0.1)
    return service


async def test_studio_verifies_a_tls_worker(services: Services, ca) -> None:
    _, ca_file, cert_file, key_file = ca
    tls = ["--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file)]
    worker = _tls_service(
        services, "worker", ["worker", *tls], {"TETHER_WORKER_TOKEN": TOKEN}, ca_file
    )
    # The studio serves TLS too, and trusts the private CA for its worker.
    studio = _tls_service(
        services,
        "studio",
        ["studio", *tls, "--worker", worker.url],
        {"TETHER_WORKER_TOKEN": TOKEN, "TETHER_CA_FILE": str(ca_file)},
        ca_file,
    )
    context = ssl.create_default_context(cafile=str(ca_file))
    async with httpx.AsyncClient(base_url=studio.url, verify=context) as http:

        async def state() -> str:
            return (await http.get("/api/v1/cloud/status")).json()["state"]

        await wait_until(lambda: _is(state, "connected"), 20, "connected over wss")
        status = (await http.get("/api/v1/cloud/status")).json()
        assert status["worker_url"].startswith("https://")
        # plain HTTP to a TLS port gets nowhere
        with pytest.raises(httpx.HTTPError):
            await http.get(f"http://127.0.0.1:{worker.port}/health")

    # Without the CA, the same worker is refused with a reason the user can act on.
    untrusting = services.studio(token=TOKEN)
    async with httpx.AsyncClient(base_url=untrusting.url) as http:
        r = await http.post(
            "/api/v1/cloud/connect", json={"worker_url": worker.url, "token": TOKEN}
        )
        assert r.status_code == 200

        async def error() -> str | None:
            return (await http.get("/api/v1/cloud/status")).json()["error"]

        message = await wait_until(error, 20, "a TLS error")
        assert "not trusted" in message and "TETHER_CA_FILE" in message, message


async def _is(get, value: str) -> bool:
    return await get() == value
