"""The aiortc adapter of one app: what Tether changes in aiortc and aioice, put in
when the app starts and taken out when it stops.

aiortc's receiver, sender and ICE gathering read module globals, so a change reaches
every peer connection in the process. An app (the studio, the worker, ``tether run``)
builds a ``MediaAdapter`` from its settings and installs it for its lifespan:

- eager release: receivers release complete frames at once, pace their requests
  for lost packets (``tether.rtc.eager_release``) and hold their bitrate estimate
  down under heavy loss (``tether.rtc.loss_control``); senders keep their resends
  within a budget (``tether.rtc.resend``);
- a steady bandwidth estimate: receivers do not take delay noise for congestion
  (``tether.rtc.estimate``; it keeps the loss control);
- a bitrate floor: VP8 encoders follow the receiver's feedback down to it, and start
  afresh at aiortc's start bitrate or the floor (``tether.rtc.encoder``);
- the fitted encoder: VP8 senders fit their stream to the link;
- ICE consent checks that wait for a long path's answer (``tether.rtc.consent``);
- ICE host candidates on loopback only, or on all interfaces (``tether.rtc.ice``).

Installs nest: two apps in one process (``tether run`` with its embedded worker, tests)
each install theirs; the adapter installed last applies, and when the last one is
uninstalled aiortc gets back what it had before the first. Installing checks the aiortc
version first (``tether.rtc.version``): on one outside the supported range the app
refuses to start."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import aioice.ice
import aiortc.codecs.vpx as _vpx
import aiortc.rtcrtpreceiver as _receiver
import aiortc.rtcrtpsender as _sender

from tether.rtc.consent import patient_query_consent
from tether.rtc.eager_release import EagerJitterBuffer, PacedNackGenerator
from tether.rtc.encoder import BITRATE_FLOOR_BPS, FITTED_START_BPS, fitted_get_encoder
from tether.rtc.estimate import SteadyBitrateEstimator
from tether.rtc.ice import IceHosts, loopback_host_addresses, resolve_ice_mode
from tether.rtc.loss_control import LossAwareEstimator
from tether.rtc.resend import budgeted_retransmit
from tether.rtc.version import check_aiortc

logger = logging.getLogger(__name__)

Lifespan = Callable[[Any], AbstractAsyncContextManager[None]]


class MediaSettings(Protocol):
    """The settings an adapter is built from (the studio's and the worker's have them)."""

    @property
    def eager_release(self) -> bool: ...

    @property
    def ice_hosts(self) -> str: ...


@dataclass(frozen=True)
class MediaAdapter:
    """What one app changes in aiortc; each field off leaves aiortc's own behaviour."""

    eager_release: bool = True
    steady_estimate: bool = True
    patient_consent: bool = True
    bitrate_floor_bps: int | None = BITRATE_FLOOR_BPS
    fitted_encoder: bool = True
    ice_hosts: IceHosts = "all"

    @classmethod
    def from_settings(cls, settings: MediaSettings, peer_hosts: Iterable[str]) -> MediaAdapter:
        """The adapter an app with ``settings`` installs; ``peer_hosts``: the hosts its
        peers are on (its own and its workers'), for the "auto" ICE hosts mode."""
        ice_hosts = resolve_ice_mode(settings.ice_hosts, list(peer_hosts))
        return cls(eager_release=settings.eager_release, ice_hosts=ice_hosts)

    @classmethod
    def stock(cls, ice_hosts: IceHosts = "all") -> MediaAdapter:
        """aiortc as it comes, but for where ICE gathers."""
        return cls(
            eager_release=False,
            steady_estimate=False,
            patient_consent=False,
            bitrate_floor_bps=None,
            fitted_encoder=False,
            ice_hosts=ice_hosts,
        )

    def install(self) -> None:
        """Put this adapter into aiortc (after checking aiortc's version)."""
        _installs.push(self)

    def uninstall(self) -> None:
        """Take this adapter out: the one installed before it applies again, or
        aiortc's own behaviour once none is left."""
        _installs.pop(self)

    @contextmanager
    def installed(self) -> Iterator[MediaAdapter]:
        self.install()
        try:
            yield self
        finally:
            self.uninstall()

    def around(self, lifespan: Lifespan) -> Lifespan:
        """An app's lifespan that installs this adapter for as long as ``lifespan`` runs."""

        @asynccontextmanager
        async def with_adapter(app: Any) -> AsyncIterator[None]:
            with self.installed():
                async with lifespan(app):
                    yield

        return with_adapter


def active() -> MediaAdapter | None:
    """The adapter that applies now (None: aiortc as it was before any install)."""
    return _installs.top()


@dataclass(frozen=True)
class _AiortcState:
    """Every aiortc and aioice global the adapter sets."""

    jitter_buffer: type
    nack_generator: type
    bitrate_estimator: type
    retransmit: Callable[..., Any]
    get_encoder: Callable[..., Any]
    min_bitrate: int
    default_bitrate: int
    get_host_addresses: Callable[[bool, bool], list[str]]
    query_consent: Callable[..., Any]

    @classmethod
    def now(cls) -> _AiortcState:
        return cls(
            jitter_buffer=_receiver.JitterBuffer,
            nack_generator=_receiver.NackGenerator,
            bitrate_estimator=_receiver.RemoteBitrateEstimator,
            retransmit=_sender.RTCRtpSender._retransmit,
            get_encoder=_sender.get_encoder,
            min_bitrate=_vpx.MIN_BITRATE,
            default_bitrate=_vpx.DEFAULT_BITRATE,
            get_host_addresses=aioice.ice.get_host_addresses,
            query_consent=aioice.ice.Connection.query_consent,
        )

    def with_adapter(self, adapter: MediaAdapter) -> _AiortcState:
        """This state (aiortc's own) with ``adapter``'s changes."""
        state = self
        if adapter.eager_release:
            state = replace(
                state,
                jitter_buffer=EagerJitterBuffer,
                nack_generator=PacedNackGenerator,
                bitrate_estimator=LossAwareEstimator,
                retransmit=budgeted_retransmit,
            )
        if adapter.steady_estimate:
            state = replace(state, bitrate_estimator=SteadyBitrateEstimator)
        if adapter.patient_consent:
            state = replace(state, query_consent=patient_query_consent)
        if adapter.fitted_encoder:
            state = replace(state, get_encoder=fitted_get_encoder)
        if adapter.bitrate_floor_bps is not None:
            floor = adapter.bitrate_floor_bps
            state = replace(
                state, min_bitrate=floor, default_bitrate=max(self.default_bitrate, floor)
            )
        if adapter.steady_estimate and adapter.fitted_encoder:
            # The receiver's estimate starts high (until the path shows congestion), so
            # the first encoder does too: at aiortc's 500 kbit/s a 720p picture was
            # shrunk before the first feedback came, and took ~17 s to grow back.
            start = max(state.default_bitrate, FITTED_START_BPS)
            state = replace(state, default_bitrate=start)
        if adapter.ice_hosts == "loopback":
            state = replace(state, get_host_addresses=loopback_host_addresses)
        return state

    def put(self) -> None:
        _receiver.JitterBuffer = self.jitter_buffer  # type: ignore[misc]
        _receiver.NackGenerator = self.nack_generator  # type: ignore[misc]
        _receiver.RemoteBitrateEstimator = self.bitrate_estimator  # type: ignore[misc]
        _sender.RTCRtpSender._retransmit = self.retransmit  # type: ignore[method-assign]
        _sender.get_encoder = self.get_encoder
        _vpx.MIN_BITRATE = self.min_bitrate
        _vpx.DEFAULT_BITRATE = self.default_bitrate
        aioice.ice.get_host_addresses = self.get_host_addresses
        aioice.ice.Connection.query_consent = self.query_consent  # type: ignore[method-assign]


class _Installs:
    """The adapters installed now, in order; the last applies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # apps may start on event loops in other threads
        self._stack: list[MediaAdapter] = []
        self._before: _AiortcState | None = None  # aiortc's globals before the first
        self._applied: MediaAdapter | None = None

    def top(self) -> MediaAdapter | None:
        with self._lock:
            return self._stack[-1] if self._stack else None

    def push(self, adapter: MediaAdapter) -> None:
        check_aiortc()
        with self._lock:
            if not self._stack:
                self._before = _AiortcState.now()
            elif adapter != self._stack[-1]:
                logger.info(
                    "two apps in this process adapt aiortc differently; %s applies, not %s",
                    adapter,
                    self._stack[-1],
                )
            self._stack.append(adapter)
            self._apply()
        logger.debug("aiortc adapter installed: %s", adapter)

    def pop(self, adapter: MediaAdapter) -> None:
        with self._lock:
            mine = [i for i, installed in enumerate(self._stack) if installed is adapter]
            if not mine:
                raise RuntimeError(f"this aiortc adapter is not installed: {adapter}")
            del self._stack[mine[-1]]
            if self._stack:
                self._apply()
            elif self._before is not None:
                self._before.put()
                self._before = self._applied = None

    def _apply(self) -> None:
        top = self._stack[-1]
        if top == self._applied:
            return  # already in place (and a bitrate carried since is kept)
        assert self._before is not None
        self._before.with_adapter(top).put()
        self._applied = top


_installs = _Installs()
