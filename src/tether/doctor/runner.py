"""``tether doctor``'s stages, in order, each after the ones it needs: reach, tls,
signaling, ice, media, pipeline. A stage whose prerequisite did not pass is reported
as skipped with the reason, never run. One test session with the worker carries the
ICE, media and pipeline checks; it is closed however the run ends (also cancelled)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tether.client.signaling import SignalingClient
from tether.client.worker_peer import WorkerPeer
from tether.clock import Clock, MonotonicClock
from tether.doctor import ice_check, media_check, pipeline_check, signaling_check
from tether.doctor.judge import judge_media
from tether.doctor.reach import check_reach
from tether.doctor.report import Check, Report, Status
from tether.doctor.source import GrainySource, Recorder, RecordingSlot
from tether.doctor.target import BadTarget, parse_target, shown_url
from tether.doctor.tls_check import check_tls
from tether.tasks import TaskOwner

logger = logging.getLogger(__name__)

STAGES = ("reach", "tls", "signaling", "ice", "media", "pipeline")
WATCH_S = 0.1


@dataclass
class DoctorOptions:
    worker_url: str
    token: str | None = None
    pipeline: str = "passthrough"
    media_s: float = media_check.MEDIA_S
    width: int = 320
    height: int = 240
    fps: float = 30.0
    own_sessions: int = 0  # sessions on that worker that are the caller's own stream


@dataclass
class Progress:
    """Hooks for a caller that shows the run as it goes."""

    started: Callable[[str], None] = lambda name: None
    finished: Callable[[Check], None] = lambda check: None


@dataclass
class _Session:
    """The test session's parts, once there are any."""

    signaling: SignalingClient | None = None
    ready: Any = None
    peer: WorkerPeer | None = None
    source: GrainySource | None = None
    recorder: Recorder | None = None
    seen: pipeline_check.PipelineSeen = field(default_factory=pipeline_check.PipelineSeen)


class Doctor:
    def __init__(
        self, options: DoctorOptions, progress: Progress | None = None, clock: Clock | None = None
    ) -> None:
        self.options = options
        self.progress = progress or Progress()
        self.clock = clock or MonotonicClock()
        self.report = Report(shown_url(options.worker_url))
        self._session = _Session()
        self._tasks = TaskOwner("doctor")
        self._blocked: str | None = None  # why the remaining stages are skipped

    async def run(self) -> Report:
        started = time.monotonic()
        try:
            await self._stages()
        finally:
            await self._close()
            self.report.took_s = time.monotonic() - started
        return self.report

    async def _stages(self) -> None:
        try:
            target = parse_target(self.options.worker_url)
        except BadTarget as bad:
            self._add(Check.fail("reach", bad.detail, bad.fix))
            self._skip_rest("reach", "the worker URL is not usable")
            return
        url, host, port = target.url, target.host, target.port
        await self._stage("reach", lambda: check_reach(host, port), "the worker is not reachable")
        await self._stage("tls", lambda: check_tls(url, host, port), "TLS did not verify")
        await self._stage("signaling", lambda: self._signaling(url), "no signaling with the worker")
        chosen = self._chosen_pipeline()
        await self._stage("ice", lambda: self._ice(chosen), "no ICE connection")
        await self._stage("media", self._media, "no media session")
        if self._session.ready is not None:
            self._blocked = None  # the pipeline check says what it can without media
        await self._stage("pipeline", lambda: self._pipeline(), "")

    async def _stage(self, name: str, work: Callable[[], Awaitable[Check]], why: str) -> None:
        if self._blocked is not None:
            self._add(Check.skipped(name, f"not run: {self._blocked}"))
            return
        self.progress.started(name)
        started = time.monotonic()
        try:
            check = await work()
        except Exception as exc:  # a check's own bug: said as its result, no traceback
            logger.debug("doctor check %s failed", name, exc_info=True)
            check = Check.fail(
                name,
                f"the check stopped with an error: {type(exc).__name__}: {exc}",
                "run it again; if it repeats, report it with the output of --json",
            )
        check.took_s = time.monotonic() - started
        self._add(check)
        if check.status is Status.FAIL:
            self._blocked = f"{why} (the {name} check failed)"

    def _add(self, check: Check) -> None:
        self.report.checks.append(check)
        self.progress.finished(check)

    def _skip_rest(self, after: str, why: str) -> None:
        for name in STAGES[STAGES.index(after) + 1 :]:
            self._add(Check.skipped(name, f"not run: {why} (the {after} check failed)"))

    # --- the stages that share the test session ---

    async def _signaling(self, url: str) -> Check:
        options = self.options
        client = SignalingClient(
            url, options.token, open_timeout_s=signaling_check.SIGNALING_TIMEOUT_S
        )
        self._session.signaling = client
        failed, ready = await signaling_check.open_signaling(client, bool(options.token))
        if failed is not None:
            return await signaling_check.maybe_https(failed, url)
        self._session.ready = ready
        health, load = await signaling_check.read_worker(url, options.token)
        check = signaling_check.judge_signaling(ready, health, load, options.own_sessions)
        if check.numbers.get(signaling_check.OWN_SLOT):
            self._blocked = "the worker has no free session for a test (your stream holds it)"
        return check

    def _chosen_pipeline(self) -> str:
        ready = self._session.ready
        names = pipeline_check.available(ready.pipelines) if ready is not None else []
        chosen = self.options.pipeline
        return chosen if chosen in names or not names else "passthrough"

    async def _ice(self, pipeline: str) -> Check:
        session, options = self._session, self.options
        assert session.signaling is not None
        session.source = GrainySource(options.width, options.height, options.fps)
        session.recorder = Recorder(session.source)
        session.peer = WorkerPeer(session.source, RecordingSlot(session.recorder))
        check = await ice_check.check_ice(session.peer, session.signaling, {"pipeline": pipeline})
        if check.status is Status.OK:
            self._tasks.spawn(self._watch_pipeline(), "pipeline-watch")
        return check

    async def _watch_pipeline(self) -> None:
        peer = self._session.peer
        assert peer is not None
        while True:
            self._session.seen.see(peer.pipeline_state(), peer.pipeline_error)
            await self.clock.sleep(WATCH_S)

    async def _media(self) -> Check:
        session, options = self._session, self.options
        assert session.peer and session.source and session.recorder
        came = await media_check.first_frame(
            session.peer,
            session.recorder,
            self.clock,
            media_check.FIRST_FRAME_S,
            media_check.LOAD_WAIT_S,
        )
        if not came:
            return self._no_frames()
        numbers = await media_check.measure_media(
            session.peer, session.source, session.recorder, options.media_s, self.clock
        )
        session.seen.fps_sent = numbers.fps_sent
        session.seen.worker_ms = session.peer.latency.worker_ms(options.media_s)
        return judge_media(numbers)

    def _no_frames(self) -> Check:
        peer = self._session.peer
        assert peer is not None
        if peer.pipeline_loading:
            return Check.warn(
                "media",
                f"no frames back yet: the worker's pipeline is still loading its model "
                f"(after {media_check.LOAD_WAIT_S:g} s)",
                "wait until the model has loaded, then run the doctor again",
            )
        return Check.fail(
            "media",
            f"ICE connected, but no processed frame came back in {media_check.FIRST_FRAME_S:g} s",
            "the worker takes the video but sends nothing back: check the worker's log "
            "(its pipeline may hang), and its load",
        )

    async def _pipeline(self) -> Check:
        ready = self._session.ready
        if ready is None:
            return Check.skipped("pipeline", "not run: no signaling with the worker")
        chosen = self.options.pipeline
        missing = pipeline_check.check_listed(ready.pipelines, chosen)
        if missing is not None:
            return missing
        media = next((c for c in self.report.checks if c.name == "media"), None)
        ran = media is not None and media.status is not Status.SKIPPED
        seen = self._session.seen if ran else None
        return pipeline_check.check_pipeline(ready.pipelines, chosen, seen)

    async def _close(self) -> None:
        await self._tasks.close()
        session = self._session
        if session.peer is not None:
            await session.peer.close()
        if session.source is not None:
            session.source.stop()
        if session.signaling is not None:
            await session.signaling.close()


async def run_doctor(options: DoctorOptions, progress: Progress | None = None) -> Report:
    return await Doctor(options, progress).run()
