"""The studio's view of a fleet: real workers on several loopback addresses, found
through a real DNS server (dnsmasq) whose records come and go, picked by load."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.asyncresolver
import pytest

from tests.helpers import Service, Services, wait_until
from tests.skips import require_tool
from tether.studio.fleet import Fleet, WorkerState, parse_worker_specs
from tether.tools.probe import FrameSink, NumberedSource, WorkerClient
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(90)

NAME = "tether-workers.test"


class Dns:
    """dnsmasq on 127.0.0.1:PORT answering NAME from a hosts file we rewrite."""

    def __init__(self, tmp: Path) -> None:
        self.hosts = tmp / "fleet.hosts"
        self.hosts.write_text("")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                shutil.which("dnsmasq") or "dnsmasq",
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                f"--port={self.port}",
                f"--addn-hosts={self.hosts}",
                "--local-ttl=0",
                "--local=/test/",  # answer NXDOMAIN ourselves for names we do not hold
                "--pid-file=",
                "--user=root",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def publish(self, addresses: list[str]) -> None:
        self.hosts.write_text("".join(f"{a} {NAME}\n" for a in addresses))
        self.proc.send_signal(signal.SIGHUP)  # dnsmasq re-reads its hosts files

    async def resolve(self, name: str, port: int) -> list[str]:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.lifetime = 1.0
        try:
            answer = await resolver.resolve(name, "A")
        except dns.resolver.NXDOMAIN:
            return []
        except dns.resolver.NoAnswer:
            return []
        return sorted(r.address for r in answer)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dns]:
    require_tool("dnsmasq", "dnsmasq-base")
    server = Dns(tmp_path)
    yield server
    server.close()


def test_worker_specs_are_split_and_checked() -> None:
    assert parse_worker_specs(["http://a:1, http://b:2", "dns+http://w.svc:8765"]) == [
        "http://a:1",
        "http://b:2",
        "dns+http://w.svc:8765",
    ]
    with pytest.raises(ValueError, match="needs a name and a port"):
        parse_worker_specs(["dns+http://w.svc"])
    with pytest.raises(ValueError, match="worker URL"):
        parse_worker_specs(["ftp://x"])


async def take_slot(worker_url: str, token: str) -> WorkerClient:
    source = NumberedSource(96, 96, fps=10)
    client = WorkerClient(worker_url, token, source, FrameSink(source=source))
    await client.start({"pipeline": "passthrough"})
    return client


async def test_names_resolved_again_on_every_pick_and_least_loaded_wins(
    services: Services, dnsmasq: Dns
) -> None:
    port = free_port()
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    workers = [
        services.worker(host=h, port=port, TETHER_MAX_SESSIONS="2", token="fleet") for h in hosts
    ]
    fleet = Fleet([f"dns+http://{NAME}:{port}"], "fleet", resolver=dnsmasq.resolve)
    assert await fleet.pick() is None
    assert fleet.summary().startswith("no worker found")

    dnsmasq.publish(hosts[:2])
    await wait_until(lambda: _count(fleet, 2), 10, "two workers in DNS")
    clients = [await take_slot(workers[0].url, "fleet")]
    try:
        picked = await fleet.pick()
        assert picked is not None and picked.url == workers[1].url  # the idle one
        states = {w.url: (w.state, w.sessions) for w in fleet.workers}
        assert states[workers[0].url] == (WorkerState.READY, 1)

        # A third worker appears; the first two fill up.
        dnsmasq.publish(hosts)
        # dnsmasq re-reads its hosts on SIGHUP in its own time: wait until it has.
        await wait_until(lambda: _count(fleet, 3), 10, "three workers in DNS")
        clients.append(await take_slot(workers[0].url, "fleet"))
        clients += [await take_slot(workers[1].url, "fleet") for _ in range(2)]
        picked = await fleet.pick()
        assert picked is not None and picked.url == workers[2].url
        assert {w.state for w in fleet.workers} == {WorkerState.BUSY, WorkerState.READY}

        # It disappears from DNS again: nothing has room, in plain words.
        dnsmasq.publish(hosts[:2])
        await wait_until(lambda: _count(fleet, 2), 10, "two workers in DNS again")
        assert await fleet.pick() is None
        assert fleet.summary() == "all workers are busy"

        # A slot frees: picked again at once.
        await clients.pop().close()
        await wait_until(fleet.pick, 10, "a free slot to be picked")
    finally:
        for client in clients:
            await client.close()


async def _count(fleet: Fleet, n: int) -> bool:
    return len(await fleet.candidates()) == n


async def test_dead_draining_and_wrong_workers_are_told_apart(services: Services) -> None:
    alive = services.worker(token="fleet")
    draining = services.worker(token="fleet")
    dead_port = free_port()  # nothing listens there
    wrong_token = services.worker(token="other")
    fleet = Fleet(
        [alive.url, draining.url, f"http://127.0.0.1:{dead_port}", wrong_token.url], "fleet"
    )
    import httpx

    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{draining.url}/api/v1/drain", headers={"Authorization": "Bearer fleet"}
        )
        assert r.status_code == 200
    picked = await fleet.pick()
    assert picked is not None and picked.url == alive.url
    states = {w.url: w for w in fleet.workers}
    assert states[draining.url].state == WorkerState.DRAINING
    assert states[f"http://127.0.0.1:{dead_port}"].state == WorkerState.UNREACHABLE
    assert states[wrong_token.url].state == WorkerState.UNREACHABLE
    assert states[wrong_token.url].error == "HTTP 401"
    assert await fleet.pick(avoid=[alive.url]) is None
    assert "no worker has room" in fleet.summary()


def _stopped(worker: Service) -> bool:
    return worker.proc.poll() is not None


async def test_a_silent_worker_costs_one_short_timeout(services: Services) -> None:
    alive = services.worker(token="fleet")
    frozen = services.worker(token="fleet")
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        fleet = Fleet([frozen.url, alive.url], "fleet")
        loop = asyncio.get_running_loop()
        started = loop.time()
        picked = await fleet.pick()
        assert loop.time() - started < 2.5
        assert picked is not None and picked.url == alive.url
        assert {w.url: w.state for w in fleet.workers}[frozen.url] == WorkerState.UNREACHABLE
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
