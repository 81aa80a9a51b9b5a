"""The studio forwards encoded video: a real client, an in-process studio (so the test
can look at what its slots hold) and a real worker process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import av
import httpx
import numpy as np
import pytest
import uvicorn
from aiortc import RTCRtpSender

from tests.helpers import Service, Services, wait_until
from tether import timing
from tether.config import Fallback, StudioSettings
from tether.media.forwarding import ForwardTrack
from tether.media.frame_id import BAND, base_planes
from tether.rtc.encoded_frame import EncodedFrame
from tether.rtc.encoded_receiver import request_keyframe
from tether.studio.app import create_studio_app
from tether.studio.studio import Studio
from tether.tools.probe import FrameSink, NumberedSource, StudioClient
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(90)

SIZE = 256


def body_luma(luma: np.ndarray) -> np.ndarray:
    return luma[BAND + 8 :].astype(int)  # below the frame-number band


EXPECTED = body_luma(base_planes(SIZE, SIZE)[:SIZE])


class CheckingSink(FrameSink):
    """Also keeps, per frame, how far its picture is from the source's (a frame decoded
    against the wrong references shows up here) and how dark it is."""

    def __init__(self, source: NumberedSource) -> None:
        super().__init__(source=source, keep_rgb=False)
        self.errors: list[float] = []
        self.dark: list[bool] = []

    def record(self, frame: av.VideoFrame) -> None:
        super().record(frame)
        luma = body_luma(frame.to_ndarray(format="gray"))
        self.dark.append(bool(luma.mean() < 30))
        self.errors.append(float(np.abs(luma - EXPECTED).mean()))


@dataclass
class Rig:
    studio: Studio
    url: str
    source: NumberedSource
    sink: CheckingSink
    client: StudioClient
    http: httpx.AsyncClient

    worker: Service

    async def state_is(self, state: str) -> bool:
        return (await self.http.get("/api/v1/cloud/status")).json()["state"] == state


class H264Client(StudioClient):
    """A client whose video is H.264 only: a codec the studio cannot forward to the
    worker (which gets VP8), so the studio must decode and re-encode both ways."""

    async def start(self, initial_parameters: dict | None = None) -> None:
        add = self.pc.addTransceiver

        def add_h264(*args, **kwargs):  # type: ignore[no-untyped-def]
            transceiver = add(*args, **kwargs)
            codecs = RTCRtpSender.getCapabilities("video").codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"])
            return transceiver

        self.pc.addTransceiver = add_h264  # type: ignore[method-assign]
        await super().start(initial_parameters)


@asynccontextmanager
async def rig(
    services: Services,
    fallback: Fallback,
    forward: bool = True,
    client_type: type[StudioClient] = StudioClient,
) -> AsyncIterator[Rig]:
    worker = services.worker()
    port = free_port()
    settings = StudioSettings(
        port=port,
        worker_url=worker.url,
        worker_token=worker.token,
        debug_endpoints=True,
        fallback=fallback,
        forward_video=forward,
    )
    app = create_studio_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, 10, "studio started")
    url = f"http://127.0.0.1:{port}"
    source = NumberedSource(SIZE, SIZE, fps=30)
    sink = CheckingSink(source)
    client = client_type(url, source, sink)
    http = httpx.AsyncClient(base_url=url, timeout=10)
    try:
        await client.start({"pipeline": "passthrough"})
        yield Rig(app.state.studio, url, source, sink, client, http, worker)
    finally:
        await client.close()
        await http.aclose()
        app.state.begin_shutdown()
        server.should_exit = True
        await asyncio.wait_for(serving, 15)


async def new_frames(r: Rig, count: int, deadline_s: float = 15) -> None:
    start_frames, start_id = r.sink.frames, r.source.count
    await wait_until(
        lambda: (
            r.sink.frames >= start_frames + count
            and r.sink.last_id is not None
            and r.sink.last_id > start_id
        ),
        deadline_s,
        f"{count} new processed frames",
    )


async def test_forwards_encoded_both_ways_and_feedback_crosses(services: Services) -> None:
    async with rig(services, Fallback.BLACK) as r:
        await new_frames(r, 10)
        studio = r.studio
        to_worker = studio.link._connection.media.peer._source.out  # type: ignore[union-attr]
        to_client = studio.stream.output.out  # type: ignore[union-attr]
        before = (to_worker.forwarded, to_client.forwarded)
        await new_frames(r, 30)
        # Nothing decoded on the way: the slots hold encoded frames and both senders
        # passed them through. (Towards the client a loaded machine may briefly show
        # the fallback, encoded black pictures: never a decoded frame.)
        assert isinstance(studio.source.frame, EncodedFrame)
        assert isinstance(studio.processed.frame, EncodedFrame)
        assert to_worker.forwarded - before[0] >= 25
        assert to_worker.encoded == to_worker.decoded == 0
        assert to_client.forwarded - before[1] >= 15 and to_client.decoded == 0
        # Each forwarded stream started at a keyframe.
        assert to_worker.starts == to_worker.starts_on_keyframe == 1
        assert to_client.starts == to_client.starts_on_keyframe == 1
        assert max(r.sink.errors[-30:]) < 12, r.sink.errors[-30:]

        # A keyframe request from the client reaches the worker's sender through the
        # studio: the studio asks the worker, and a keyframe comes back.
        worker_stream = studio.processed.frame.upstream
        asked = worker_stream.keyframe_requests
        keyframes = []
        put = studio.processed.put

        def watch(frame: EncodedFrame) -> None:
            keyframes.append(frame.keyframe)
            put(frame)

        studio.processed.put = watch  # type: ignore[method-assign]
        # Not a wait on a condition: requests are rate-limited to one per interval, and
        # the one under test must not fall inside the last one's.
        await asyncio.sleep(timing.KEYFRAME_REQUEST_INTERVAL_S)
        client_receiver = next(t.receiver for t in r.client.pc.getTransceivers())
        await request_keyframe(client_receiver)
        await wait_until(lambda: any(keyframes), 5, "a keyframe from the worker")
        assert worker_stream.keyframe_requests == asked + 1

        # The worker's bitrate estimate for our stream caps the client's sender.
        client_stream = studio.source.frame.upstream
        await wait_until(lambda: client_stream.bitrate_cap is not None, 10, "REMB upstream")


@pytest.mark.parametrize(
    ("fallback", "forward"),
    [
        (Fallback.HOLD, True),
        (Fallback.PASSTHROUGH, True),
        (Fallback.BLACK, True),
        (Fallback.HOLD, False),  # the decode path: what a codec we cannot forward takes
    ],
)
async def test_fallback_hand_over_is_clean(
    services: Services, fallback: Fallback, forward: bool
) -> None:
    async with rig(services, fallback, forward) as r:
        await new_frames(r, 20)
        studio = r.studio
        output = studio.stream.output  # type: ignore[union-attr]
        before_drop = len(r.sink.errors)
        last_id = r.sink.last_id
        # Freeze the worker: its frames stop, the fallback shows, the link goes down.
        os.kill(r.worker.pid, signal.SIGSTOP)
        try:
            await wait_until(lambda: output.showing_fallback == fallback, 10, "the fallback")
            shown = len(r.sink.errors)
            await wait_until(lambda: len(r.sink.errors) >= shown + 12, 10, "fallback frames")
        finally:
            os.kill(r.worker.pid, signal.SIGCONT)
        during = slice(shown + 2, shown + 12)
        if fallback == Fallback.BLACK:
            assert all(r.sink.dark[during])
        else:
            assert not any(r.sink.dark[during])
        ids = [i for _, i in r.sink.history[during]]
        if fallback == Fallback.HOLD:
            assert len(set(ids)) == 1 and ids[0] >= last_id, ids  # the last picture, held
        if fallback == Fallback.PASSTHROUGH:
            assert ids == sorted(ids) and ids[-1] > last_id + 5, ids  # the live input

        # The link recovers (a new peer connection) and forwarding resumes.
        await wait_until(lambda: r.state_is("connected"), 20, "connected again")
        await new_frames(r, 20)
        assert output.showing_fallback is None
        to_worker = studio.link._connection.media.peer._source.out  # type: ignore[union-attr]
        assert to_worker.starts == to_worker.starts_on_keyframe == (1 if forward else 0)
        assert output.out.starts == output.out.starts_on_keyframe
        assert isinstance(studio.processed.frame, EncodedFrame) == forward
        # Every frame the client got, before, during and after: no corruption.
        start = before_drop - 10
        errors = [
            e
            for e, dark in zip(r.sink.errors[start:], r.sink.dark[start:], strict=True)
            if not dark
        ]
        assert max(errors) < 12, errors
        if output.held is not None and forward:  # decoded lazily: in batches
            assert output.held.decoded < output.out.forwarded


async def test_a_codec_the_studio_cannot_forward_is_decoded_and_re_encoded(
    services: Services,
) -> None:
    async with rig(services, Fallback.HOLD, client_type=H264Client) as r:
        await new_frames(r, 10)  # past the fallback frames shown before the worker's
        await new_frames(r, 30)
        studio = r.studio
        # The client's H.264 is decoded on the way in; the worker's VP8 is forwarded to
        # the studio and decoded for the client's H.264 sender.
        assert isinstance(studio.source.frame, av.VideoFrame)
        assert isinstance(studio.processed.frame, EncodedFrame)
        to_worker = studio.link._connection.media.peer._source  # type: ignore[union-attr]
        assert isinstance(to_worker, ForwardTrack) and to_worker.out.codec == "video/vp8"
        to_client = studio.stream.output.out  # type: ignore[union-attr]
        assert to_client.codec == "video/h264"
        assert to_client.decoded >= 30 and to_client.encoded >= 30 and to_client.forwarded == 0
        assert max(r.sink.errors[-30:]) < 12, r.sink.errors[-30:]
