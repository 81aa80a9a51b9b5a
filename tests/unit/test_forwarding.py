"""Forwarding encoded video: the aiortc internals it adapts (pinned), the keyframe gate,
and the lazily decoded hold picture, on real VP8 from libvpx."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import aiortc
import aiortc.rtcrtpreceiver as receiver_module
import av
import pytest
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from tether.media import forwarding
from tether.media.forwarding import Outgoing
from tether.media.frame_id import base_planes, read_id, stamp_id
from tether.media.frames import FrameSlot, Restamper
from tether.rtc.encoded_frame import EncodedFrame, packet_of, vp8_keyframe_size
from tether.rtc.encoded_receiver import receive_encoded
from tether.rtc.ice import create_peer_connection
from tether.rtc.version import supported
from tether.studio.output import HeldPicture

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
SIZE = 128


def encoded_stream(count: int, keyframes: tuple[int, ...] = (0,)) -> list[bytes]:
    """``count`` numbered frames from libvpx; keyframes at the given indexes."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width = codec.height = SIZE
    codec.pix_fmt = "yuv420p"
    codec.options = {"deadline": "realtime", "lag-in-frames": "0", "cpu-used": "8"}
    codec.gop_size = 10_000
    out = []
    for index in range(count):
        planes = base_planes(SIZE, SIZE)
        stamp_id(planes, SIZE, index)
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = index
        if index in keyframes:
            frame.pict_type = av.video.frame.PictureType.I
        out.append(b"".join(bytes(p) for p in codec.encode(frame)))
    return out


class FakeUpstream:
    size = (SIZE, SIZE)

    def __init__(self) -> None:
        self.requests = 0

    async def request_keyframe(self) -> bool:
        self.requests += 1
        return True


def unit(data: bytes, upstream: object, ts: int = 0) -> EncodedFrame:
    size = vp8_keyframe_size(data)
    return EncodedFrame(data, ts, size is not None, VP8, upstream, size)  # type: ignore[arg-type]


def test_pins_the_aiortc_internals_it_adapts() -> None:
    assert supported(aiortc.__version__)
    handle = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in handle
    assert "encoded_frame.timestamp = self.__timestamp_mapper.map(" in handle
    worker = inspect.getsource(receiver_module.decoder_worker)
    assert "task = input_q.get()" in worker and "output_q.put(None)" in worker
    init = inspect.getsource(RTCRtpReceiver.__init__)
    for name in ("__decoder_queue", "__decoder_thread", "__remote_bitrate_estimator"):
        assert f"self.{name}" in init
    for name in ("__rtx_ssrc", "__remote_streams", "__rtcp_ssrc"):
        assert f"self.{name}" in init
    assert "remb = self.__remote_bitrate_estimator.add(" in handle
    assert inspect.signature(RTCRtpReceiver._send_rtcp_pli).parameters.keys() == {
        "self",
        "media_ssrc",
    }
    # The sender packetizes whatever is not a decoded Frame, as it is.
    sender_next = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "self.__encoder.pack(data)" in sender_next
    assert "force_keyframe = self.__force_keyframe" in sender_next
    assert "self._handle_rtcp_packet" not in sender_next
    assert "def pack(self, packet: Packet)" in inspect.getsource(Vp8Encoder)
    # RTCP reaches a sender through an attribute lookup, so wrapping it per sender works.
    assert "self._codecs" in inspect.getsource(RTCRtpTransceiver.__init__)
    route = inspect.getsource(RTCDtlsTransport._handle_rtcp_data)
    assert "await recipient._handle_rtcp_packet(packet)" in route


async def test_a_receiver_hands_out_encoded_frames() -> None:
    pc = create_peer_connection()
    try:
        receiver = pc.addTransceiver("video").receiver
        receiver._track = receiver_module.RemoteStreamTrack(kind="video")
        handle = receive_encoded(receiver)
        assert handle is not None
        queue = receiver._RTCRtpReceiver__decoder_queue
        stream = encoded_stream(2)
        queue.put((VP8, JitterFrame(data=stream[0], timestamp=0)))
        queue.put((VP8, JitterFrame(data=stream[1], timestamp=3000)))
        first, second = await receiver.track.recv(), await receiver.track.recv()
        assert (first.keyframe, first.size, first.upstream) == (True, (SIZE, SIZE), handle)
        assert (second.keyframe, second.size, second.timestamp) == (False, None, 3000)
        assert handle.size == handle.largest == (SIZE, SIZE)
        assert forwarding.largest_size_of(second) == (SIZE, SIZE)
        # A sender that shrinks its picture to fit a narrow path: the largest stays.
        handle.see_size((SIZE // 2, SIZE // 2))
        assert (handle.size, handle.largest) == ((SIZE // 2, SIZE // 2), (SIZE, SIZE))
        # The stop sentinel reaches the (idle) decoder thread's side only.
        queue.put(None)
        assert queue.get() is None
    finally:
        await pc.close()


def test_vp8_keyframes_are_told_apart_with_their_size() -> None:
    stream = encoded_stream(3, keyframes=(0, 2))
    assert vp8_keyframe_size(stream[0]) == (SIZE, SIZE)
    assert vp8_keyframe_size(stream[1]) is None
    assert vp8_keyframe_size(stream[2]) == (SIZE, SIZE)
    assert vp8_keyframe_size(b"") is None


def test_packet_of_is_what_aiortc_packetizes_as_is() -> None:
    data = encoded_stream(1)[0]
    payloads, _ = Vp8Encoder().pack(Restamper().stamp(packet_of(unit(data, None))))
    # VP8 payload descriptor (4 bytes with a 15-bit picture id), then the frame.
    assert b"".join(p[4:] for p in payloads) == data


def test_slot_hands_out_frames_in_order_and_tells_of_gaps() -> None:
    slot = FrameSlot()
    assert slot.next_after(0) is None
    for value in range(1, 4):
        slot.put(value)
    assert slot.next_after(0) == (1, 1) and slot.next_after(2) == (3, 3)
    assert slot.next_after(3) is None
    for value in range(4, 40):
        slot.put(value)
    seq, _ = slot.next_after(3)  # fell behind: the oldest kept one, not seq 4
    assert seq > 4


async def test_outgoing_starts_each_forwarded_stream_at_a_keyframe() -> None:
    out = Outgoing()
    out.codec = "video/vp8"
    a, b = FakeUpstream(), FakeUpstream()
    stream = encoded_stream(4, keyframes=(0, 3))
    delta, key = unit(stream[1], a), unit(stream[0], a)
    assert not out.admits(delta, contiguous=True)  # nothing forwarded yet
    assert out.admits(key, contiguous=False)
    packet = await out.send(key)
    assert isinstance(packet, av.Packet) and bytes(packet) == stream[0]
    assert out.admits(delta, contiguous=True)
    assert not out.admits(delta, contiguous=False)  # a gap: wait for a keyframe
    assert not out.admits(unit(stream[2], b), contiguous=True)  # another source
    await out.want_keyframe(unit(stream[2], b))
    assert b.requests == 1
    # Downstream asks for a keyframe: the request goes to the forwarded source.
    await out.keyframe_requested()
    assert a.requests == 1
    # A picture in between: it goes out as a keyframe, and forwarding restarts at one.
    picture = av.VideoFrame.from_ndarray(base_planes(SIZE, SIZE), format="yuv420p")
    first = out.encode(picture)
    assert first.pict_type == av.video.frame.PictureType.I
    assert out.encode(picture).pict_type != av.video.frame.PictureType.I
    assert not out.admits(delta, contiguous=True)
    assert out.admits(unit(stream[3], a), contiguous=True)
    await out.send(unit(stream[3], a))
    assert out.starts == out.starts_on_keyframe == 2
    # pts rise across the change of source
    assert packet.pts < first.pts


async def test_outgoing_decodes_a_codec_its_sender_did_not_negotiate() -> None:
    out = Outgoing()
    out.codec = "video/h264"
    sent = await out.send(unit(encoded_stream(1)[0], FakeUpstream()))
    assert isinstance(sent, av.VideoFrame) and (sent.width, sent.height) == (SIZE, SIZE)
    assert out.encoded == out.decoded == 1 and out.forwarded == 0


async def test_held_picture_is_the_last_one_shown_decoded_lazily() -> None:
    held = HeldPicture()
    upstream = FakeUpstream()
    count = 40
    stream = encoded_stream(count, keyframes=(0, count - 5))
    try:
        assert await held.picture() is None
        for index in range(count - 6):
            assert not held.shown(unit(stream[index], upstream))
        assert held.decoded == 0  # nothing decoded while nothing needs it
        picture = await held.picture()
        assert read_id(picture.to_ndarray(format="gray")) == count - 7
        assert held.decoded == count - 6
        # A keyframe starts over: what came before it is never decoded.
        for index in range(count - 6, count):
            held.shown(unit(stream[index], upstream))
        picture = await held.picture()
        assert read_id(picture.to_ndarray(format="gray")) == count - 1
        assert held.decoded == count - 6 + 5  # the keyframe and the 4 after it
        # A decoded picture (a codec we could not forward) is held as it is.
        frame = av.VideoFrame.from_ndarray(base_planes(SIZE, SIZE), format="yuv420p")
        held.shown(frame)
        assert await held.picture() is frame
    finally:
        held.close()
    assert not any(t.name == "held-picture" for t in threading.enumerate())


async def test_held_picture_backlog_asks_for_a_keyframe_then_decodes() -> None:
    held = HeldPicture(keyframe_every=5, backlog_max=8)
    upstream = FakeUpstream()
    stream = encoded_stream(9)
    try:
        wants = [held.shown(unit(data, upstream)) for data in stream[:8]]
        assert wants == [False] * 4 + [True] * 4  # a keyframe would bound the backlog
        for _ in range(200):  # no keyframe came: the overflow is decoded on the thread
            if held.decoded == 8:
                break
            await asyncio.sleep(0.01)
        assert held.decoded == 8
        held.shown(unit(stream[8], upstream))
        picture = await held.picture()
        assert read_id(picture.to_ndarray(format="gray")) == 8 and held.decoded == 9
    finally:
        held.close()


def test_receive_encoded_refuses_a_started_receiver() -> None:
    class Started:
        _RTCRtpReceiver__decoder_thread = object()
        track = object()

    with pytest.raises(RuntimeError, match="before the receiver starts"):
        receive_encoded(Started())  # type: ignore[arg-type]


STREAM_LEN = 60
STREAM_KEYFRAMES = (0, 17, 41)


class HeldPictureMachine(RuleBasedStateMachine):
    """Frames shown, pictures asked for and the overflow decode on the thread, raced in
    any order: the picture is always the last one shown."""

    stream = encoded_stream(STREAM_LEN, keyframes=STREAM_KEYFRAMES)

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.held = HeldPicture(keyframe_every=3, backlog_max=5)
        decode = self.held._decoder.decode

        def slow_decode(frame: EncodedFrame) -> av.VideoFrame | None:
            time.sleep(0.001)  # widen the window in which frames arrive mid-batch
            return decode(frame)

        self.held._decoder.decode = slow_decode  # type: ignore[method-assign]
        self.upstream = FakeUpstream()
        self.next = 0

    @precondition(lambda self: self.next < STREAM_LEN)
    @rule(count=st.integers(1, 8), pause=st.booleans())
    def show(self, count: int, pause: bool) -> None:
        for _ in range(min(count, STREAM_LEN - self.next)):
            self.held.shown(unit(self.stream[self.next], self.upstream))
            self.next += 1
            if pause:  # let the thread take an overflow batch between two frames
                time.sleep(0.0003)

    @rule(now=st.booleans())
    def picture(self, now: bool) -> None:
        if not now:  # let an overflow batch start on the thread first
            self.loop.run_until_complete(asyncio.sleep(0.005))
        picture = self.loop.run_until_complete(self.held.picture())
        if self.next == 0:
            assert picture is None
        else:
            assert read_id(picture.to_ndarray(format="gray")) == self.next - 1

    def teardown(self) -> None:
        self.held.close()
        self.loop.close()


TestHeldPicture = HeldPictureMachine.TestCase
TestHeldPicture.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
