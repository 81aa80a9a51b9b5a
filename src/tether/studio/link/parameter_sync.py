"""Parameter sync: the worker must run exactly the studio's latest parameters.

An offer carries a frozen copy of the latest set; an update made since is sent over
the data channel, and sent again every ``PARAMS_RESEND_S`` until the worker
acknowledges it. The store keeps the worker's acknowledgement beside the version."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

from tether.client.worker_peer import WorkerPeer
from tether.clock import Clock
from tether.studio.parameters import ParameterStore, ParamSet
from tether.timing import PARAMS_RESEND_S

logger = logging.getLogger(__name__)


class ParameterSync:
    def __init__(self, params: ParameterStore, clock: Clock, on_change: Callable[[], None]) -> None:
        self.params = params
        self._clock = clock
        self._on_change = on_change
        # (version, when) last sent, per peer: a handover's two peers keep their own.
        self._sent: weakref.WeakKeyDictionary[WorkerPeer, tuple[int, float]] = (
            weakref.WeakKeyDictionary()
        )

    def offer(self) -> ParamSet:
        """What an offer carries: frozen, later updates cannot change it."""
        return self.params.current()

    def applied(self, peer: WorkerPeer, live: bool) -> bool:
        """The worker behind ``peer`` runs the latest parameters. The link's own peer
        goes by the store's acknowledgement (a resumed session may already have them);
        a peer waiting behind a closed gate (a handover) must say so itself."""
        if live:
            return self.params.in_sync
        return peer.acked_version == self.params.version

    def send(self, peer: WorkerPeer, live: bool = True) -> None:
        """Send the latest parameters if the worker does not have them yet."""
        if not peer.channel_open or self.applied(peer, live):
            return
        current = self.params.current()
        if peer.send_parameters(current.version, current.parameters):
            self._sent[peer] = (current.version, self._clock.now())

    def resend_if_unacked(self, peer: WorkerPeer, live: bool = True) -> None:
        version, at = self._sent.get(peer, (-1, 0.0))
        if version != self.params.version or self._clock.now() - at >= PARAMS_RESEND_S:
            self.send(peer, live)

    def acked(self, version: int) -> None:
        if not self.params.ack(version):
            logger.info("worker acknowledged v%d: not one we sent", version)
        self._on_change()
