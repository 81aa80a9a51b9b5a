"""The studio's status comes from one frozen snapshot of the link."""

from __future__ import annotations

import dataclasses

import pytest

from tether.config import StudioSettings
from tether.studio.link import LinkState, LinkStatus
from tether.studio.studio import Studio


async def test_cloud_status_is_built_from_one_snapshot(monkeypatch) -> None:
    studio = Studio(StudioSettings())
    taken: list[LinkStatus] = []
    original = studio.link.status

    def counting() -> LinkStatus:
        taken.append(original())
        return taken[-1]

    monkeypatch.setattr(studio.link, "status", counting)
    studio.update_parameters({"pipeline": "gray"})
    status = studio.status()
    assert len(taken) == 1
    assert status.state == LinkState.IDLE and status.connected is False
    assert status.params_version == 1 and status.params_acked_version == 0
    assert status.pipeline_error is None and status.failed_probing is False
    assert status.quality is None and status.stats.frames_sent == 0
    await studio.close()


async def test_link_status_is_frozen() -> None:
    studio = Studio(StudioSettings())
    snapshot = studio.link.status()
    assert snapshot.state == LinkState.IDLE and not snapshot.connecting
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.state = LinkState.CONNECTED  # type: ignore[misc]
    studio.update_parameters({"a": 1})
    assert snapshot.params_version == 0  # taken before: it does not move
    assert studio.link.status().params_version == 1
    await studio.close()


async def test_retry_without_a_link_is_refused_cleanly() -> None:
    from tether.studio.link import NotConnected

    studio = Studio(StudioSettings())
    with pytest.raises(NotConnected):
        await studio.link.reconnect()
    await studio.close()


async def test_a_recovery_under_way_shows_in_the_status_not_on_the_timeline() -> None:
    from tether.studio.link import LinkEventKind, Recovery

    studio = Studio(StudioSettings())
    assert studio.link.status().recovery is None
    recoveries = studio.link._supervisor.recoveries
    recoveries.begin(Recovery.MOVE, LinkEventKind.MOVING, "the worker is busy")
    snapshot = studio.link.status()
    assert snapshot.recovery == Recovery.MOVE
    assert all(e.kind != "moving" for e in snapshot.events)  # the API's events as before
    assert studio.status().recovery == Recovery.MOVE  # and the API says so
    await studio.close()
