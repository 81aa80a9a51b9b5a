"""A stream across the network lab: worker in its namespace, studio in the studio
namespace, and a measuring client (numbered frames) next to the studio. Used by the
tests in tests/net and by bench/network.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from tests.net.lab import WORKER_PORT, Lab
from tether.rtc.adapter import MediaAdapter
from tether.tools.probe import FrameSink, NumberedSource, StudioClient


class LabStream:
    def __init__(
        self,
        lab: Lab,
        size: int = 512,
        fps: float = 30,
        studio_env: dict[str, str] | None = None,
        worker_env: dict[str, str] | None = None,
        scene: str = "camera",
    ) -> None:
        self.lab = lab
        self.size, self.fps = size, fps
        self.studio_env = {"TETHER_DEBUG_ENDPOINTS": "1", **(studio_env or {})}
        self.worker_env = worker_env or {}
        # A camera-like picture by default: a still one compresses to almost nothing, and
        # no cap would bind.
        self.source = NumberedSource(size, size, fps=fps, scene=scene)
        self.sink = FrameSink(source=self.source, keep_rgb=False)
        self.client: StudioClient | None = None
        self.http: httpx.AsyncClient | None = None
        self.seq = 0  # the last parameter update posted
        self._inside = contextlib.ExitStack()

    async def start(self, deadline_s: float = 30) -> None:
        lab = self.lab
        self.worker = lab.worker(**self.worker_env)
        self.studio = lab.studio(**self.studio_env)
        # This thread's sockets (client peer, HTTP to the studio) live in the studio ns.
        self._inside.enter_context(lab.entered(lab.studio_ns))
        # The measuring client stands in for a browser, which adapts its own encoder to
        # the feedback: encode as Tether's processes do, not with aiortc's 250 kbps floor;
        # and, as a browser does, start afresh (not where an earlier test's peer got to).
        # It releases frames as soon as they are complete, as browsers do. Its ICE
        # crosses the lab's network, so it gathers on every interface.
        client_media = MediaAdapter(ice_hosts="all")
        self._inside.enter_context(client_media.installed())
        self.http = httpx.AsyncClient(base_url=self.studio.url, timeout=10)
        await self.wait(self.linked, deadline_s, "link connected")
        self.client = StudioClient(self.studio.url, self.source, self.sink)
        # tint at strength 0 looks like the input; its prompt carries the update number.
        await self.client.start({"pipeline": "tint", "strength": 0.0, "prompt": "seq 0"})
        await self.wait(self.synced, deadline_s, "parameters acknowledged")
        start = self.sink.frames
        await self.wait(lambda: self.sink.frames > start + 10, deadline_s, "frames flowing")

    async def close(self) -> None:
        try:
            if self.client is not None:
                await self.client.close()
            if self.http is not None:
                await self.http.aclose()
        finally:
            self._inside.close()

    async def __aenter__(self) -> LabStream:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reading the studio --------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        assert self.http is not None
        return (await self.http.get("/api/v1/cloud/status")).json()

    async def linked(self) -> bool:
        return (await self.status())["state"] == "connected"

    async def synced(self) -> bool:
        status = await self.status()
        return (
            status["state"] == "connected"
            and status["params_acked_version"] == status["params_version"]
        )

    async def wait(self, check, deadline_s: float, what: str, every_s: float = 0.02) -> float:
        """Poll until ``check`` is true; return when it became true. Fails at the deadline."""
        deadline = time.monotonic() + deadline_s
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                with contextlib.suppress(httpx.HTTPError):
                    result = await result
                if asyncio.iscoroutine(result):
                    result.close()
                    result = False
            if result:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {deadline_s}s waiting for {what}")
            await asyncio.sleep(every_s)

    async def post_parameters(self) -> None:
        assert self.http is not None
        self.seq += 1
        answer = await self.http.post("/api/v1/parameters", json={"prompt": f"seq {self.seq}"})
        assert answer.status_code == 200, answer.text

    async def worker_seq(self) -> int:
        """The update number the worker applied in the studio's current session."""
        session_id = (await self.status())["session_id"]
        url = f"http://{self.lab.worker_addr}:{WORKER_PORT}/api/v1/sessions"
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(url, headers={"Authorization": f"Bearer {self.lab.token}"})
        sessions = answer.json()["sessions"]
        ours = [s for s in sessions if s["id"] == session_id]
        assert ours, f"the studio's session {session_id} is not on the worker: {sessions}"
        return int(ours[0]["parameters"].get("prompt", "seq 0").split()[-1])

    # -- reading the frames ----------------------------------------------------------

    def first_fresh_frame_after(self, t: float) -> float | None:
        """When the first frame captured after ``t`` came back (None: none yet)."""
        sent_at = self.source.sent_at
        for received, frame_id in self.sink.history:
            sent = sent_at.get(frame_id)
            if sent is not None and sent > t and 0 <= received - sent < 5.0:
                return received
        return None

    def first_new_frame_after(self, t: float) -> float | None:
        """When a picture not shown before ``t`` first came back after it (None: none yet)."""
        seen: set[int] = set()
        for arrival in self.sink.arrivals:
            if arrival.at <= t:
                seen.add(arrival.frame_id)
            elif arrival.frame_id not in seen:
                return arrival.at
        return None

    def fps_between(self, t0: float, t1: float) -> float:
        """Distinct pictures per second in ``[t0, t1)``: a repeat is not a new picture."""
        return self.view(t0, t1)["summary"]["distinct_fps"]

    def view(self, t0: float, t1: float) -> dict[str, Any]:
        """What a viewer saw in ``[t0, t1)``, per 5 s window and in all (tools.viewing)."""
        return self.sink.windows(t0, t1)

    def latencies_between(self, t0: float, t1: float) -> list[float]:
        """Glass-to-glass latency (s) of each distinct frame received in [t0, t1]."""
        out, seen = [], set()
        for received, frame_id in self.sink.history:
            if t0 <= received <= t1 and frame_id not in seen:
                seen.add(frame_id)
                sent = self.source.sent_at.get(frame_id)
                if sent is not None and 0 <= received - sent < 30:
                    out.append(received - sent)
        return out
