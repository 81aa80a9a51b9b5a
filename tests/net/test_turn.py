"""Deployable across the internet: when no UDP crosses between the studio and the
worker, media flows through a real TURN server (coturn) whose time-limited credentials
the worker mints from a shared secret and hands out with ``get_ice_servers``."""

from __future__ import annotations

import time

import pytest

from tests.net.lab import ROUTER_W, Lab
from tests.net.rig import LabStream
from tests.skips import require_tool

pytestmark = pytest.mark.timeout(120)


async def test_media_flows_only_through_turn(lab: Lab) -> None:
    require_tool("turnserver", "coturn")
    secret = "lab-turn-secret"
    turn = lab.turn_server(secret)
    lab.block_forwarded_udp()
    worker_env = {
        "TETHER_TURN_URLS": f"turn:{ROUTER_W}:3478?transport=udp",
        "TETHER_TURN_SECRET": secret,
        "TETHER_TURN_TTL_S": "600",
    }
    async with LabStream(lab, 256, 30, worker_env=worker_env) as rig:
        start = time.monotonic()
        await rig.wait(lambda: rig.fps_between(start, time.monotonic()) > 10, 20, "frames")
        assert lab.held() > 0  # direct (host candidate) checks were tried and dropped
        log = turn.output()
        assert "allocation" in log.lower() or "relay" in log.lower(), log[-2000:]
        await rig.post_parameters()
        await rig.wait(rig.synced, 10, "parameters acknowledged through the relay")


async def test_without_turn_no_media_crosses(lab: Lab) -> None:
    """The control: the same blocked network without TURN never connects."""
    lab.block_forwarded_udp()
    rig = LabStream(lab, 128, 15, studio_env={"TETHER_RECONNECT_DELAYS": "0"})
    with pytest.raises(AssertionError, match="timed out"):
        await rig.start(deadline_s=12)
    await rig.close()
