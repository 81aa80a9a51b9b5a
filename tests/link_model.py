"""A model-based check of the link's promise: hypothesis drives real studio and worker
processes with random sequences of user and network events, and after each one,
once things settle, checks the invariants. Used by the integration test (a few
examples) and by bench/chaos.py (for minutes on end)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import httpx
import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.helpers import Service, Services, sockets_to, wait_until
from tether.tools.probe import FrameSink, NumberedSource, StudioClient

ID_SPAN = 8192  # each client's frame numbers live in their own range


class Rig:
    """One worker and one studio, shared by every example of a run."""

    def __init__(self, services: Services) -> None:
        self.worker: Service = services.worker(TETHER_SESSION_GRACE_S="5")
        self.studio: Service = services.studio(
            self.worker, TETHER_DEBUG_ENDPOINTS="1", TETHER_FAILED_PROBE_S="1"
        )
        self.loop = asyncio.new_event_loop()
        self.fd_baseline: int | None = None
        self.clients = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.studio.pid}/fd"))

    def close(self) -> None:
        self.loop.close()


def _gray(rgb: np.ndarray | None) -> bool:
    body = rgb[40:].astype(int)  # type: ignore[index]
    return bool(np.abs(body[:, :, 0] - body[:, :, 2]).mean() < 6)


class LinkModel(RuleBasedStateMachine):
    rig: Rig  # set by the runner before the machine is built
    checks = 0  # invariant checks made (all runs): the chaos benchmark reports it
    sequences = 0
    streams_started = 0

    def __init__(self) -> None:
        type(self).sequences += 1
        super().__init__()
        self.http = httpx.AsyncClient(base_url=self.rig.studio.url, timeout=60)
        self.want_connected = True
        self.current: StudioClient | None = None
        self.displaced: list[StudioClient] = []
        self.pipeline = "passthrough"
        self.run(self._reset())

    def run(self, coro: Any) -> Any:
        return self.rig.run(coro)

    async def _reset(self) -> None:
        await self.http.post("/api/v1/webrtc/stop")
        await self.http.post("/api/v1/cloud/connect")

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        r = await self.http.post(path, **kwargs)
        assert r.status_code < 500, f"{path}: {r.status_code} {r.text}"
        return r

    def new_client(self) -> StudioClient:
        k = 1 + self.rig.clients % (65536 // ID_SPAN - 1)  # range 0 is the black frame's
        self.rig.clients += 1
        source = NumberedSource(128, 128, fps=15, id_offset=k * ID_SPAN)
        return StudioClient(self.rig.studio.url, source, FrameSink(source=source))

    # --- rules ---
    @rule(
        pipeline=st.sampled_from(["gray", "passthrough", None]),
        note=st.integers(0, 1000),
    )
    def post_parameters(self, pipeline: str | None, note: int) -> None:
        changes: dict[str, Any] = {"note": note}
        if pipeline is not None:
            changes["pipeline"] = pipeline
        r = self.run(self.post("/api/v1/parameters", json=changes))
        assert r.status_code == 200, r.text

    @rule(count=st.integers(1, 3), pipeline=st.sampled_from(["gray", "passthrough"]))
    def start_streams(self, count: int, pipeline: str) -> None:
        """One offer, or several at once: the last one to connect wins."""
        clients = [self.new_client() for _ in range(count)]
        type(self).streams_started += 1

        async def go() -> None:
            await asyncio.gather(*(c.start({"pipeline": pipeline}) for c in clients))

        self.run(go())

        async def settled() -> dict[str, Any] | None:
            # A new offer takes over once it connects: the last to connect wins.
            status = await self.status()
            return status if status["incoming_stream_id"] is None else None

        stream_id = self.run(wait_until(settled, 15, "no offer still connecting"))["stream_id"]
        winner = next(c for c in clients if c.session_id == stream_id)
        old = [self.current] if self.current else []
        self.displaced += old + [c for c in clients if c is not winner]
        self.current = winner

    @precondition(lambda self: self.current is not None)
    @rule()
    def stop_stream(self) -> None:
        self.run(self.post("/api/v1/webrtc/stop"))
        assert self.current is not None
        self.displaced.append(self.current)
        self.current = None

    @rule()
    def connect(self) -> None:
        self.run(self.post("/api/v1/cloud/connect"))
        self.want_connected = True

    @rule()
    def disconnect(self) -> None:
        self.run(self.post("/api/v1/cloud/disconnect"))
        self.want_connected = False

    @rule()
    def reconnect(self) -> None:
        self.run(self.post("/api/v1/cloud/reconnect"))

    @rule(what=st.sampled_from(["webrtc", "signaling"]))
    def debug_drop(self, what: str) -> None:
        self.run(self.post(f"/api/v1/cloud/debug/disconnect-{what}"))

    @rule(seconds=st.sampled_from([0.3, 1.0, 2.5]))
    def freeze_worker(self, seconds: float) -> None:
        os.kill(self.rig.worker.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(self.rig.worker.pid, signal.SIGCONT)

    # --- settling and invariants ---
    async def status(self) -> dict[str, Any]:
        return (await self.http.get("/api/v1/cloud/status")).json()

    async def settle(self) -> dict[str, Any]:
        want = "connected" if self.want_connected else "idle"

        async def settled() -> dict[str, Any] | None:
            status = await self.status()
            if status["state"] == "failed" and self.want_connected:
                await self.post("/api/v1/cloud/reconnect")  # the user's Retry
                return None
            if status["state"] != want:
                return None
            streaming = want == "connected" and self.current is not None
            if streaming and not (status["webrtc_connected"] and await self.worker_in_sync(status)):
                return None
            return status

        return await wait_until(settled, 45, f"the link to settle ({want})", every_s=0.1)

    async def worker_sessions(self) -> list[dict[str, Any]]:
        # A client of its own, closed at once: no socket to the worker stays open.
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.get(
                f"{self.rig.worker.url}/api/v1/sessions",
                headers={"Authorization": f"Bearer {self.rig.worker.token}"},
            )
        return r.json()["sessions"]

    async def worker_in_sync(self, status: dict[str, Any]) -> bool:
        params = (await self.http.get("/api/v1/parameters")).json()
        active = [s for s in await self.worker_sessions() if s["state"] == "active"]
        return (
            status["params_acked_version"] == status["params_version"] == params["version"]
            and len(active) == 1
            and active[0]["parameters_version"] == params["version"]
            and active[0]["parameters"] == params["parameters"]
        )

    @invariant()
    def promise_holds(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        type(self).checks += 1
        status = await self.settle()
        # The status agrees with the model, and with the worker.
        current = self.current
        assert status["streaming"] == (current is not None), status
        if current is not None:
            assert status["stream_id"] == current.session_id
        params = (await self.http.get("/api/v1/parameters")).json()
        if self.want_connected and current is not None:
            assert await self.worker_in_sync(status)
        # Exactly one client receives frames, and only its own.
        marks = {id(c): c.sink.frames for c in self.displaced}
        if current is not None:
            start = current.sink.frames
            await wait_until(lambda: current.sink.frames >= start + 10, 20, "the client's frames")
            offset = current.source.id_offset
            recent = [fid for _, fid in current.sink.history[-8:]]
            # Its own frames, or black (the fallback before any frame came back).
            own = all(offset <= f < offset + ID_SPAN or f == 0 for f in recent)
            assert own, (offset, recent)
            if status["state"] == "connected":
                live = (await self.status())["fallback_active"] is None
                want_gray = params["parameters"].get("pipeline", "passthrough") == "gray"
                if live and current.sink.last_rgb is not None:
                    await wait_until(
                        lambda: _gray(current.sink.last_rgb) == want_gray,
                        5,
                        f"frames {'gray' if want_gray else 'in colour'} as the status says",
                    )
        for client in self.displaced:
            assert client.sink.frames <= marks[id(client)] + 2, "a displaced client gets frames"
        for client in self.displaced:
            await client.close()
        self.displaced = []
        # Nothing leaks: one signaling socket while connected, bounded descriptors.
        assert sockets_to(self.rig.worker.port) == (1 if self.want_connected else 0)
        fds = self.rig.fds()
        if self.rig.fd_baseline is None:
            self.rig.fd_baseline = fds
        assert fds <= self.rig.fd_baseline + 40, f"studio fds {self.rig.fd_baseline} -> {fds}"

    def teardown(self) -> None:
        async def close() -> None:
            for client in [*self.displaced, *([self.current] if self.current else [])]:
                await client.close()
            await self.http.post("/api/v1/webrtc/stop")
            await self.http.aclose()

        self.run(close())


def machine_for(rig: Rig) -> type[LinkModel]:
    return type("BoundLinkModel", (LinkModel,), {"rig": rig})
