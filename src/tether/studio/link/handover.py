"""Moving a live stream to another worker before the old one goes: make-before-break.

A draining worker tells its studios so. The link then picks another worker, opens a
socket and a peer connection there, and waits until the new worker's processed
frames flow and it applied the latest parameters, all while the old worker keeps
serving. Only then does the output switch over and the old worker get let go. The
new worker's frames wait in a staging slot until the switch, so the client never
sees two workers' frames interleaved. If the move cannot be made, the stream stays
where it is until the old worker ends it, and the ordinary recovery takes over."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import av

from tether.client.signaling import SignalingClient, SignalingError
from tether.client.worker_peer import WorkerPeer
from tether.media.frames import FrameSlot
from tether.studio.link.events import TryFailed
from tether.timing import FLOW_POLL_S, PARAMS_RESEND_S

if TYPE_CHECKING:
    from tether.studio.link.connector import Connector

logger = logging.getLogger(__name__)


class GatedSlot(FrameSlot):
    """A peer's own slot in front of the link's: frames pass on only while open, so at a
    handover the old worker's stop exactly when the new worker's start."""

    def __init__(self, target: FrameSlot, open_: bool) -> None:
        super().__init__()
        self.target = target
        self.open = open_

    def put(self, frame: av.VideoFrame) -> None:
        super().put(frame)
        if self.open:
            self.target.put(frame)


async def move_before_break(connector: Connector) -> None:
    old_url = connector.worker_url
    assert connector.placement is not None
    client: SignalingClient | None = None
    peer: WorkerPeer | None = None
    try:
        async with connector.media_lock:
            url = await connector.placement.choose(None, avoid=[old_url or ""])
            client = await connector.connect_signaling(url)
            resume = None
            if connector.streaming:
                peer = connector.new_peer(open_=False)
                resume = await connector.negotiate(peer, client, None)
                await _await_staged_flow(connector, peer)
            # The switch: from here on the new worker is the link's.
            old_peer, old_signaling = connector.peer, connector.signaling
            connector.detach(old_signaling)
            await connector.adopt_signaling(
                client, url, moved_from=(old_url or url, "the worker is draining")
            )
            client = None
            await connector.adopt_peer(peer, resume, old_peer)
            peer = None
            await connector.release(old_peer, old_signaling)
            logger.info("moved from %s to %s before its drain", old_url, url)
    except (SignalingError, TryFailed, OSError, TimeoutError) as exc:
        logger.warning("could not move off the draining worker: %s; staying until it ends", exc)
    finally:
        if peer is not None:
            await peer.close()
        if client is not None:
            await client.close()
        connector.set_stage(None)


async def _await_staged_flow(connector: Connector, peer: WorkerPeer) -> None:
    """The new worker sends processed frames and applied exactly the latest parameters."""
    connector.set_stage("moving")
    clock, params = connector.clock, connector.params
    deadline = clock.now() + connector.timing.flow_timeout_s
    sent: tuple[int, float] = (-1, 0.0)
    while True:
        latest = params.current()
        if peer.processed.seq > 0 and peer.acked_version == latest.version:
            return
        if peer.state in ("failed", "closed"):
            raise SignalingError(f"the new worker's media connection {peer.state}")
        if clock.now() > deadline:
            raise SignalingError("the new worker sent no processed frames in time")
        if peer.channel_open and (
            sent[0] != latest.version or clock.now() - sent[1] >= PARAMS_RESEND_S
        ):
            peer.send_parameters(latest.version, latest.parameters)
            sent = (latest.version, clock.now())
        await clock.sleep(FLOW_POLL_S)
