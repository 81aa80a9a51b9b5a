"""Settings for the studio and the worker, read from ``TETHER_*`` environment variables.

CLI flags override these; the library never reads the environment anywhere else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Fallback(StrEnum):
    """What the browser sees while the worker's frames are not arriving."""

    HOLD = "hold"
    PASSTHROUGH = "passthrough"
    BLACK = "black"


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TETHER_", extra="ignore", populate_by_name=True)

    # Which local addresses ICE may use: "auto" (loopback only when every peer is
    # on this machine), "loopback", or "all". The app's lifespan applies it
    # (tether.rtc.adapter).
    ice_hosts: Literal["auto", "loopback", "all"] = "auto"
    # Hand each video frame to the decoder as soon as it is complete (see tether.rtc.eager_release).
    eager_release: bool = True
    # Write per-frame stage timings here (latency benchmark); off when unset.
    trace_dir: str | None = None


class WorkerSettings(_Base):
    host: str = "127.0.0.1"
    port: int = 8765
    token: SecretStr | None = Field(default=None, validation_alias="TETHER_WORKER_TOKEN")
    session_grace_s: float = Field(default=30.0, ge=0)
    # Hostile clients: a connection must send its request headers within this time, and
    # at most this many connections are open at once (fewer if the fd limit is low).
    header_timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=4096, ge=1)
    max_sessions: int = Field(default=1, ge=1)
    # SIGTERM: stop taking sessions, tell studios to move, exit when they left or after this.
    drain_s: float = Field(default=30.0, ge=0)
    # Exit when this process id is gone, so `tether up` never leaves an orphan worker.
    parent_pid: int | None = None
    # ICE servers handed to clients and used by the worker (see tether.worker.ice).
    ice_servers: str | None = None
    turn_urls: str | None = None
    turn_secret: SecretStr | None = None
    turn_ttl_s: float = Field(default=3600.0, gt=0)
    # A pipeline's load (its load step and first frame) that takes longer is an error.
    load_timeout_s: float = Field(default=180.0, gt=0)
    # Memory the worker's models may take (MB; None: not limited). A switch keeps the
    # running pipeline going while the next loads only where both declared needs fit.
    model_memory_mb: int | None = Field(default=None, ge=0)

    @field_validator("ice_servers", "turn_urls")
    @classmethod
    def _ice_urls(cls, value: str | None) -> str | None:
        from tether.worker.ice import parse_ice_servers

        parse_ice_servers(value)  # a bad URL or JSON is an error at startup, not per call
        return value


def _parse_delays(value: object) -> object:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            return [float(p) for p in parts]
        except ValueError as exc:
            raise ValueError(
                f"TETHER_RECONNECT_DELAYS must be comma-separated seconds, got {value!r}"
            ) from exc
    return value


class StudioSettings(_Base):
    host: str = "127.0.0.1"
    port: int = 8000
    worker_url: str | None = None
    worker_token: SecretStr | None = None
    # Required when bound off loopback (one is generated and printed if unset).
    studio_token: SecretStr | None = None
    # Host names served besides loopback names and the bound address ("*": any).
    allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="TETHER_ALLOW_HOST"
    )
    # A private CA for https/wss workers (else the system's CAs).
    ca_file: str | None = None
    debug_endpoints: bool = False
    pipeline: str | None = None  # pipeline for a new stream that names none
    fallback: Fallback = Fallback.HOLD
    reconnect_delays: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.0, 1.0, 2.0, 4.0]
    )
    reconnect_jitter: float = Field(default=0.1, ge=0, le=1)
    heartbeat_interval_s: float = Field(default=0.5, gt=0)
    # 0 turns the heartbeat and the media watchdog off: only aiortc's own detection is
    # left (for comparison benchmarks; it needs ~30 s to notice a silent worker).
    heartbeat_timeout_s: float = Field(default=1.5, ge=0)
    # Per-stage limits inside one try, so a dead path fails fast and the next try goes:
    # open the signaling socket and get 'ready'; the worker's answer to an offer (plus
    # the measured round trip); ICE/DTLS and the data channel; the first processed
    # frame and the parameter acknowledgement.
    signaling_timeout_s: float = Field(default=1.5, gt=0)
    offer_timeout_s: float = Field(default=2.0, gt=0)
    ice_timeout_s: float = Field(default=3.0, gt=0)
    flow_timeout_s: float = Field(default=3.0, gt=0)
    # Once failed, while a stream is wanted, check the worker this often and recover
    # by itself when it answers; 0 turns it off.
    failed_probe_s: float = Field(default=5.0, ge=0)
    # Relay encoded video as it comes (tether.media.forwarding); off: decode and re-encode in
    # the studio, as before (for comparison benchmarks).
    forward_video: bool = True

    @field_validator("reconnect_delays", mode="before")
    @classmethod
    def _delays(cls, value: object) -> object:
        return _parse_delays(value)

    @field_validator("allow_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("reconnect_delays")
    @classmethod
    def _non_negative(cls, value: list[float]) -> list[float]:
        if not value or any(d < 0 for d in value):
            raise ValueError("reconnect delays must be one or more non-negative numbers")
        return value
