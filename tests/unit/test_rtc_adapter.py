"""The aiortc/aioice adapter: pins what it reaches into."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aioice.ice
import pytest

from tether.rtc.adapter import MediaAdapter
from tether.rtc.encoded_receiver import receive_encoded
from tether.rtc.encoder import FittedVp8Encoder, carry_bitrate, sending_bitrate
from tether.rtc.ice import create_peer_connection, resolve_ice_mode
from tether.rtc.measures import (
    RTP_TIMESTAMP_MODULO,
    datagrams_received,
    media_ssrcs,
    on_frame_sent,
    receive_estimate,
    received_counts,
    receiver_of,
    wire_timestamp,
)

LOOPBACK = MediaAdapter.stock(ice_hosts="loopback")


def test_loopback_mode_patches_and_restores_host_addresses() -> None:
    before = aioice.ice.get_host_addresses  # the tests' own adapter may have set it
    with LOOPBACK.installed():
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
        with replace(LOOPBACK, ice_hosts="all").installed():
            gather = aioice.ice.get_host_addresses  # aioice's own
            assert (gather.__module__, gather.__name__) == ("aioice.ice", "get_host_addresses")
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses is before


async def test_peer_connection_has_no_hidden_stun_server() -> None:
    pc = create_peer_connection()
    try:
        pc.addTransceiver("video")
        with LOOPBACK.installed():  # as in tests: else every interface's address
            await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate")]
        assert candidates and all("127.0.0.1" in c and "typ host" in c for c in candidates)
    finally:
        await pc.close()


@pytest.mark.parametrize(
    ("mode", "hosts", "expected"),
    [
        ("auto", ["127.0.0.1", "localhost"], "loopback"),
        ("auto", ["127.0.0.1", "gpu.example.com"], "all"),
        ("auto", ["::1"], "loopback"),
        ("all", ["127.0.0.1"], "all"),
        ("loopback", ["10.1.1.1"], "loopback"),
    ],
)
def test_resolve_mode(mode: str, hosts: list[str], expected: str) -> None:
    assert resolve_ice_mode(mode, hosts) == expected


def test_bad_mode() -> None:
    with pytest.raises(ValueError, match="auto, loopback or all"):
        resolve_ice_mode("some", [])


async def test_bitrate_floor_and_a_new_encoder_starting_where_the_last_one_was() -> None:
    import aiortc.codecs.vpx as vpx
    from aiortc import VideoStreamTrack

    saved = (vpx.MIN_BITRATE, vpx.DEFAULT_BITRATE)
    a, b = create_peer_connection(), create_peer_connection()
    adapter = replace(LOOPBACK, bitrate_floor_bps=150_000)
    try:
        adapter.install()
        encoder = vpx.Vp8Encoder()
        encoder.target_bitrate = 100_000  # what a receiver on a slow link asks for
        assert encoder.target_bitrate == 150_000  # aiortc alone would stop at 250 kbps
        a.addTrack(VideoStreamTrack())
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        sender = a.getSenders()[0]
        for _ in range(200):  # until the sender made its encoder
            if sending_bitrate(a) is not None:
                break
            await asyncio.sleep(0.05)
        sender._RTCRtpSender__encoder.target_bitrate = 180_000
        carry_bitrate(a)
        assert vpx.Vp8Encoder().target_bitrate == 180_000
        with adapter.installed():  # a second app like it keeps what was carried
            assert vpx.Vp8Encoder().target_bitrate == 180_000
        adapter.uninstall()
        assert saved == (vpx.MIN_BITRATE, vpx.DEFAULT_BITRATE)  # undone, carried bitrate too
        with adapter.installed():  # as a new app starts: afresh
            assert vpx.Vp8Encoder().target_bitrate == 500_000  # aiortc's start
    finally:
        assert saved == (vpx.MIN_BITRATE, vpx.DEFAULT_BITRATE)
        await a.close()
        await b.close()


async def test_fitted_encoder_and_datagram_count_on_two_real_peers() -> None:
    from aiortc import VideoStreamTrack

    adapter = replace(LOOPBACK, fitted_encoder=True)
    adapter.install()
    a, b = create_peer_connection(), create_peer_connection()
    try:
        a.addTrack(VideoStreamTrack())
        b.addTransceiver("video", direction="recvonly")
        b.on("track", lambda track: None)
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        assert datagrams_received(b) == 0
        for _ in range(200):  # until b has heard a's media
            if datagrams_received(b) > 5 and sending_bitrate(a) is not None:
                break
            await asyncio.sleep(0.05)
        assert datagrams_received(b) > 5
        encoder = a.getSenders()[0]._RTCRtpSender__encoder
        assert isinstance(encoder, FittedVp8Encoder)
        encoder.target_bitrate = 100_000_000  # aiortc's ceiling still holds
        assert encoder.policy.requested == 1_500_000
    finally:
        adapter.uninstall()
        await a.close()
        await b.close()


@pytest.mark.parametrize("encoded", [False, True], ids=["decoded", "encoded"])
async def test_wire_timestamps_match_between_sender_and_receiver(encoded: bool) -> None:
    """What the sender reports it put on the wire is what the receiver maps its frames
    back to: aiortc's random origin on one side, its first timestamp on the other."""
    from aiortc import VideoStreamTrack

    a, b = create_peer_connection(), create_peer_connection()
    sent: list[tuple[int, int]] = []
    received: list[int] = []
    done = asyncio.Event()

    @b.on("track")
    def on_track(track) -> None:
        receiver = receiver_of(b, track)
        assert receiver is not None
        if encoded:
            assert receive_encoded(receiver) is not None

        async def drain() -> None:
            while len(received) < 15:
                unit = await track.recv()
                stamp = unit.timestamp if encoded else unit.pts
                wire = wire_timestamp(receiver, stamp)
                assert wire is not None
                received.append(wire)
            done.set()

        tasks.append(asyncio.ensure_future(drain()))

    class Source(VideoStreamTrack):
        handed_out: list[int] = []

        async def recv(self):
            frame = await super().recv()
            self.handed_out.append(frame.pts)
            return frame

    tasks: list[asyncio.Future] = []
    try:
        source = Source()
        assert on_frame_sent(a.addTrack(source), lambda ts, wire: sent.append((ts, wire)))
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        await asyncio.wait_for(done.wait(), 20)
    finally:
        for task in tasks:
            task.cancel()
        await a.close()
        await b.close()
    # One random origin: every frame's wire timestamp is its own timestamp plus it.
    origins = {(wire - ts) % RTP_TIMESTAMP_MODULO for ts, wire in sent}
    assert len(origins) == 1, origins
    # Each frame the track handed out is reported once it is sent, in order; VP8
    # encoding goes through microseconds, so its timestamp may come back a tick less.
    handed_out = source.handed_out[: len(sent)]
    assert all(0 <= pts - ts <= 1 for (ts, _), pts in zip(sent, handed_out, strict=True))
    assert len(sent) >= len(source.handed_out) - 2
    # Every frame the receiver got is one the sender reported, in order.
    wires = [wire for _, wire in sent]
    assert received[: len(wires) - 1] == [w for w in wires if w in received][: len(wires) - 1]
    assert set(received[:-1]) <= set(wires), (received, wires)
    assert received[0] == wires[0]


def test_wire_timestamp_is_unknown_before_a_frame() -> None:
    from aiortc import RTCRtpReceiver

    class NoTransport:
        state = "new"

    receiver = RTCRtpReceiver("video", NoTransport())
    assert wire_timestamp(receiver, 1234) is None


@contextlib.asynccontextmanager
async def video_both_ways() -> AsyncIterator[tuple[Any, Any, list[int]]]:
    """Two real peers, a and b, each sending the other a test video; b's incoming
    frames are drained and counted (frames[0]). Closed, tasks and all, on exit."""
    from aiortc import VideoStreamTrack

    a, b = create_peer_connection(), create_peer_connection()
    frames = [0]
    tasks: list[asyncio.Task] = []

    @b.on("track")
    def on_track(track) -> None:
        async def drain() -> None:
            while True:
                await track.recv()
                frames[0] += 1

        tasks.append(asyncio.create_task(drain()))

    try:
        a.addTrack(VideoStreamTrack())
        b.addTrack(VideoStreamTrack())  # b sends too: its receiver reports ride along
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        yield a, b, frames
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await a.close()
        await b.close()


async def test_media_path_measures_from_two_real_peers() -> None:
    """received_counts/receive_estimate read aiortc's receiver; media_stats.read puts them
    together with the public stats (the worker's receiver reports, the transport)."""
    from tether.studio.link.media_stats import read

    before = create_peer_connection()
    try:
        assert received_counts(before) is None and receive_estimate(before) is None
    finally:
        await before.close()
    async with video_both_ways() as (a, b, frames):
        sender_side = None
        for _ in range(200):  # up to 10 s: aiortc's estimator settles after ~3 s of flow
            await asyncio.sleep(0.05)
            sender_side = await read(a)
            if receive_estimate(b) and sender_side.outbound and frames[0] > 30:
                break
        counts = received_counts(b)
        assert counts is not None and counts[0] == 0 and counts[1] > 30  # loopback: no loss
        estimate = receive_estimate(b)
        assert estimate is not None and 10_000 < estimate < 50_000_000
        receiver_side = await read(b)
        assert receiver_side.inbound is not None and receiver_side.inbound.received > 30
        assert receiver_side.received_bytes > 0 and receiver_side.receive_bps
        # What b reported about a's video reached a, in the public stats.
        assert sender_side is not None and sender_side.outbound is not None
        assert sender_side.outbound.lost == 0 and sender_side.outbound.received > 0
        assert sender_side.sent_bytes > 0


async def test_loss_counts_first_transmissions_where_public_stats_show_the_rtx_stream() -> None:
    """a drops every 10th video packet it first sends; b asks for them again (NACK) and
    gets them on the retransmission stream. received_counts still sees the 10%; aiortc's
    public inbound-rtp entry is overwritten by the retransmission stream (why we reach
    in), and a's remote-inbound-rtp (b's receiver reports) sees it too."""
    from tether.studio.link.media_stats import read, window_loss

    async with video_both_ways() as (a, b, _):
        transport = a.getSenders()[0].transport
        vp8 = next(c.payloadType for c in a.getTransceivers()[0]._codecs if c.name == "VP8")
        original, sent = transport._send_rtp, 0

        async def lossy(data: bytes) -> None:
            nonlocal sent
            if len(data) > 1 and data[1] & 0x7F == vp8:  # a first transmission
                sent += 1
                if sent % 10 == 0:
                    return
            await original(data)

        transport._send_rtp = lossy
        first = None
        for _ in range(200):
            await asyncio.sleep(0.05)
            here = await read(a)
            if here.outbound is not None and first is None:
                first = here.outbound
            counts = received_counts(b)
            if first and here.outbound and counts and here.outbound.received - first.received > 60:
                break
        counts = received_counts(b)
        assert counts is not None and 0.05 < counts[0] / (counts[0] + counts[1]) < 0.15
        public = [s for s in (await b.getStats()).values() if s.type == "inbound-rtp"]
        ssrcs = media_ssrcs(b.getReceivers()[0])
        assert len(public) == 1 and public[0].ssrc not in ssrcs  # the RTX stream
        loss = window_loss(first, (await read(a)).outbound)
        assert loss is not None and 0.04 < loss < 0.2
