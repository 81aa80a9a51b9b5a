"""The track the client gets back: the worker's frames while the link is live (forwarded
as they came), else the fallback (held picture, the client's own video, or black)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from tether.config import Fallback
from tether.media import trace
from tether.media.forwarding import Outgoing, Sent, Unit, size_of
from tether.media.frames import FrameSlot, Signal, black_like
from tether.rtc.encoded_frame import EncodedFrame, FrameDecoder
from tether.timing import FALLBACK_AFTER_S, HOLD_DECODER_JOIN_S, OUTPUT_WAKE_S

# The `hold` fallback keeps the worker's frames encoded since the last keyframe. Past
# this many it asks the worker for a keyframe (which starts the backlog over), so the
# picture is at most this many frames' decoding away when the link drops (~0.1 s).
HOLD_KEYFRAME_EVERY = 150
# Past this many (the worker ignores keyframe requests) it decodes them on a thread.
HOLD_BACKLOG_MAX = 300


class HeldPicture:
    """The last processed picture the client was sent, for the `hold` fallback.

    Forwarded frames are kept encoded from the latest keyframe on and decoded on a
    thread only when the picture is wanted (or the backlog overflows): the studio
    decodes nothing on the hot path, and keeps one picture and one keyframe's worth
    of frames at most."""

    def __init__(
        self, keyframe_every: int = HOLD_KEYFRAME_EVERY, backlog_max: int = HOLD_BACKLOG_MAX
    ) -> None:
        self.decoded = 0
        self._keyframe_every = keyframe_every
        self._backlog_max = backlog_max
        self._cond = threading.Condition()
        self._backlog: list[EncodedFrame] = []
        self._picture: av.VideoFrame | None = None
        self._generation = 0
        self._busy = False
        self._waiters: list[concurrent.futures.Future[av.VideoFrame | None]] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._decoder = FrameDecoder()

    def shown(self, unit: Unit) -> bool:
        """Remember what was sent; True when a keyframe would be welcome."""
        with self._cond:
            if isinstance(unit, av.VideoFrame):
                self._picture, self._backlog = unit, []
                self._generation += 1  # a batch being decoded is older: drop its result
                return False
            if unit.keyframe:
                self._backlog = []  # a VP8 keyframe refreshes every reference frame
            self._backlog.append(unit)
            if len(self._backlog) >= self._backlog_max:
                self._wake()
            return len(self._backlog) >= self._keyframe_every

    async def picture(self) -> av.VideoFrame | None:
        with self._cond:
            if not self._backlog and not self._busy:
                return self._picture
            future: concurrent.futures.Future[av.VideoFrame | None] = concurrent.futures.Future()
            self._waiters.append(future)
            self._wake()
        return await asyncio.wrap_future(future)

    def _wake(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="held-picture", daemon=True)
            self._thread.start()
        self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not (
                    self._waiters or len(self._backlog) >= self._backlog_max
                ):
                    self._cond.wait()
                if self._closed:
                    break
                batch, self._backlog = self._backlog, []
                generation, self._busy = self._generation, True
            picture = None
            for unit in batch:
                picture = self._decoder.decode(unit) or picture
            with self._cond:
                self.decoded += len(batch)
                self._busy = False
                if picture is not None and generation == self._generation:
                    self._picture = picture
                if not self._backlog:
                    self._serve(self._picture)
        with self._cond:
            self._serve(None)

    def _serve(self, picture: av.VideoFrame | None) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(picture)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=HOLD_DECODER_JOIN_S)


class OutputTrack(MediaStreamTrack):
    """Processed frames while the link is live, else fallback frames paced by the input."""

    kind = "video"

    def __init__(
        self,
        processed: FrameSlot,
        source: FrameSlot,
        fallback: Fallback,
        is_live: Callable[[], bool],
        live_changed: Signal,
    ) -> None:
        super().__init__()
        self.out = Outgoing()
        self._processed = processed
        self._source = source
        self._fallback = fallback
        self._is_live = is_live
        self._live_changed = live_changed
        self._processed_seq = processed.seq
        self._source_seq = source.seq
        self.showing_fallback: Fallback | None = None
        # Only `hold` needs the last processed picture.
        self.held = HeldPicture() if fallback == Fallback.HOLD else None
        self._black: av.VideoFrame | None = None
        # The worker's frames flow but not from a keyframe yet: keep the fallback up
        # (from the start, or once none has gone out for FALLBACK_AFTER_S).
        self._awaiting_keyframe = False
        self._processed_sent_at: float | None = None

    async def recv(self) -> Sent:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            live = self._is_live()
            if live and (item := self._processed.next_after(self._processed_seq)):
                sent = await self._send_processed(*item)
                if sent is not None:
                    return sent
                continue
            fallback_due = not live or (self._awaiting_keyframe and self._worker_stalled())
            if fallback_due and self._source.seq > self._source_seq:
                # Active from now on, also while its first picture is being made.
                self.showing_fallback = self._fallback
                sent = await self._send_fallback()
                if sent is not None:
                    return sent
                continue
            waits = [
                self._processed.changed.future(),
                self._source.changed.future(),
                self._live_changed.future(),
            ]
            await asyncio.wait(waits, timeout=OUTPUT_WAKE_S, return_when=asyncio.FIRST_COMPLETED)

    def _worker_stalled(self) -> bool:
        """No processed frame has gone out for a while. A live link that lost a few
        frames waits for the worker's next keyframe with the client's last picture up:
        repeating the held picture meanwhile showed a congested path's client more
        repeats than new pictures, and cost the studio an encode each."""
        sent_at = self._processed_sent_at
        return sent_at is None or time.monotonic() - sent_at > FALLBACK_AFTER_S

    async def _send_processed(self, seq: int, unit: Unit) -> Sent | None:
        if isinstance(unit, av.VideoFrame):  # decoded: latest wins
            seq, unit = self._processed.seq, self._processed.frame
        contiguous = seq == self._processed_seq + 1
        self._processed_seq = seq
        if not self.out.admits(unit, contiguous):
            self._awaiting_keyframe = True
            await self.out.want_keyframe(unit)
            return None
        sent = await self.out.send(unit)
        if sent is None:
            return None
        self._awaiting_keyframe = False
        self._processed_sent_at = time.monotonic()
        self._source_seq = self._source.seq
        self.showing_fallback = None
        if self.held is not None and self.held.shown(
            sent if isinstance(sent, av.VideoFrame) else unit
        ):
            await self.out.want_keyframe(unit)
        trace.mark("studio.to_client", sent)
        return sent

    async def _send_fallback(self) -> Sent | None:
        if self._fallback == Fallback.PASSTHROUGH:
            # The client's own video, forwarded (from one of its keyframes) as it came.
            item = self._source.next_after(self._source_seq)
            if item is None:
                return None
            self._source_seq, sent = await self.out.offer(self._source, self._source_seq, *item)
            return sent
        # Paced by the input: one fallback picture per new input frame.
        self._source_seq = self._source.seq
        # Hold what the client last saw, not a newer frame it never got.
        picture = await self.held.picture() if self.held is not None else None
        if picture is None:
            picture = self._black_frame()
        return None if picture is None else self.out.encode(picture)

    def _black_frame(self) -> av.VideoFrame | None:
        source = self._source.frame
        size = size_of(source) if source is not None else None
        if size is None:
            return None
        black = self._black
        if black is None or (black.width, black.height) != size:
            # one per size, not one per frame
            black = self._black = black_like(av.VideoFrame(size[0], size[1], "yuv420p"))
        return black

    def stop(self) -> None:
        super().stop()
        if self.held is not None:
            self.held.close()
