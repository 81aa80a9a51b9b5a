"""Moving a live stream to another worker before the old one goes: make-before-break.

A draining worker tells its studios so, and the supervisor starts a handover. The
link picks another worker, opens a socket there and brings a peer up through the
media path's one door with its gate closed, all while the old worker keeps serving.
Only once the new worker's processed frames flow and it applied the latest
parameters does the output switch over and the old worker get let go. If the move
cannot be made, this raises and the stream stays where it is."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tether.client.signaling import SignalingClient
from tether.client.worker_peer import WorkerPeer
from tether.studio.link.media_path import MediaPath
from tether.studio.link.placement import Placement
from tether.studio.link.signaling_side import SignalingSide

logger = logging.getLogger(__name__)

WHY = "the worker is draining"


async def move_before_break(
    placement: Placement,
    signaling: SignalingSide,
    media: MediaPath,
    streaming: bool,
    adopt: Callable[[SignalingClient, str], Awaitable[None]],
) -> None:
    """Raises SignalingError (or TryFailed: no worker with room) if it cannot be made."""
    old_url = placement.current
    client: SignalingClient | None = None
    peer: WorkerPeer | None = None
    try:
        async with media.lock:
            url = await placement.choose(None, avoid=[old_url or ""])
            client = await signaling.connect(url, placement.token)
            if streaming:
                peer = await media.bring_up(client, signaling.rtt_s, staged=True)
            # The switch: from here on the new worker is the link's.
            old_client = signaling.detach()
            signaling.forget_worker()
            placement.leave(WHY)
            await adopt(client, url)
            client = None
            old_peer = await media.switch_to(peer)
            peer = None
            if old_peer is not None:
                await media.close(old_peer)
            if old_client is not None:
                await old_client.close()
            logger.info("moved from %s to %s before its drain", old_url, url)
    finally:
        if peer is not None:
            await peer.close()
        if client is not None:
            await client.close()
