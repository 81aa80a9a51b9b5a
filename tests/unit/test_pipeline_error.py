"""A failing pipeline is reported, not hidden: counted per session, sent to the client
when it starts failing, at most once a second while it fails, cleared when it works."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np

from tether import protocol
from tether.pipelines import load_pipelines
from tether.pipelines.builtin import NoParams
from tether.worker.engine import Engine
from tether.worker.session import MediaSession


class Flaky:
    """Fails while ``broken`` is set."""

    name = "flaky"
    params_model = NoParams
    broken = True

    def process(self, frame: np.ndarray, params: NoParams) -> np.ndarray:
        if self.broken:
            raise ValueError("bad weights")
        return frame


async def test_failures_are_counted_reported_rate_limited_and_cleared() -> None:
    flaky = Flaky()
    pipelines = {**load_pipelines(), "flaky": flaky}
    sent: list[dict] = []
    states: list[str] = []
    with ThreadPoolExecutor(1) as executor:
        session = MediaSession(pipelines, Engine(executor))
        session._send = lambda message: (
            states.append(message.state)
            if isinstance(message, protocol.PipelineState)
            else sent.append(message.model_dump())
        )
        session.apply({"pipeline": "flaky"}, 1)
        frame = av.VideoFrame(32, 32, "yuv420p")
        for _ in range(5):
            assert await session.process(frame) is frame  # the raw frame goes on
        assert sent == [{"type": "pipeline_error", "count": 1, "message": sent[0]["message"]}]
        assert "bad weights" in sent[0]["message"] and "flaky" in sent[0]["message"]
        session.pipeline._error_sent_at -= 1.1  # a second later, still failing: one more report
        await session.process(frame)
        assert [m["count"] for m in sent] == [1, 6]
        flaky.broken = False
        await session.process(frame)
        assert sent[-1] == {"type": "pipeline_error", "count": 6, "message": None}
        assert states == ["error", "ready"]  # the pipeline's state: told on each change
        described = session.describe()
        assert described["pipeline_errors"] == 6 and described["pipeline_error"] is None
        await session.close()
