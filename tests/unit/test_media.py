import asyncio

import av
import numpy as np

from tether.client.signaling import SignalingError, signaling_url
from tether.media.frame_id import base_planes, read_id, stamp_id
from tether.media.frames import FrameSlot, Restamper, black_like
from tether.tasks import TaskOwner


def frame() -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")


async def test_slot_keeps_only_the_newest_frame() -> None:
    slot = FrameSlot()
    frames = [frame() for _ in range(3)]
    for f in frames:
        slot.put(f)
    seq, got = await slot.newer_than(0)
    assert got is frames[-1] and seq == 3
    waiter = asyncio.create_task(slot.newer_than(3))
    await asyncio.sleep(0)
    assert not waiter.done()
    slot.put(frames[0])
    assert (await waiter) == (4, frames[0])


def test_restamper_is_strictly_increasing() -> None:
    stamper = Restamper()
    pts = [stamper.stamp(frame()).pts for _ in range(50)]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))


def test_black_frame_is_black() -> None:
    rgb = black_like(frame()).to_ndarray(format="rgb24")
    assert rgb.max() < 5


def test_frame_numbers_round_trip() -> None:
    planes = base_planes(512, 512)
    for frame_id in (0, 1, 1234, 65535):
        stamp_id(planes, 512, frame_id)
        assert read_id(planes[:512]) == frame_id
        assert read_id(255 - planes[:512], inverted=True) == frame_id


def test_signaling_url_forms() -> None:
    assert signaling_url("http://127.0.0.1:8765") == "ws://127.0.0.1:8765/ws"
    assert signaling_url("https://gpu.example:443/") == "wss://gpu.example:443/ws"
    assert signaling_url("ws://h:1/custom") == "ws://h:1/custom"
    for bad in ("127.0.0.1:8765", "ftp://x", "http://"):
        try:
            signaling_url(bad)
        except SignalingError as exc:
            assert "worker URL" in str(exc)
        else:
            raise AssertionError(bad)


async def test_task_owner_cancels_and_awaits_everything() -> None:
    owner = TaskOwner("t")
    stopped = []

    async def forever(i: int) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.append(i)

    for i in range(3):
        owner.spawn(forever(i), f"f{i}")
    await asyncio.sleep(0)
    await owner.close()
    assert sorted(stopped) == [0, 1, 2] and len(owner) == 0


async def test_a_cancelled_reader_does_not_stall_the_others() -> None:
    # Two senders read one slot (a handover, a takeover); closing one cancels its
    # read. The other must still get the next frame.
    slot = FrameSlot()
    slot.put(frame())
    leaving = asyncio.create_task(slot.newer_than(1))
    staying = asyncio.create_task(slot.newer_than(1))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.gather(leaving, return_exceptions=True)
    newest = frame()
    slot.put(newest)
    assert await asyncio.wait_for(staying, 1) == (2, newest)
