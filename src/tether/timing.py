"""Every timing constant of Tether, in one place, in seconds.

The link, the signaling socket, the fleet, the media measures and the aiortc adapter
read their fixed timings from here; the timings a user can set (``TETHER_*``) are the
``Timing`` group at the end, built from the studio's settings. Change a number here
and every part that depends on it sees the change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# --- the link: health and the watchdog ---
# The worker's frames missing this long while ours flow and its heartbeat answers: the
# pipeline is stuck. Long enough that a lost key frame on a lossy path is not a stall.
MEDIA_STALL_S = 4.0
# ...or this long when our frames do not reach the worker's pipeline either (congestion
# upstream: the keyframe that mends it may take a while through a narrow path).
STARVED_STALL_S = 15.0
# The worker's frames missing this long while ours flow: show the fallback.
FALLBACK_AFTER_S = 1.0
# Our own frames count as flowing if the newest is at most this old.
SOURCE_FRESH_S = 0.5
# The watchdog's tick (the heartbeat interval, if shorter).
WATCH_TICK_S = 0.1
# The worker's datagrams arrive but no pong, nor frame: lost after this long.
UNANSWERED_S = 5.0
# The media round trip and the worker's time per frame: medians over this long.
MEDIA_LATENCY_WINDOW_S = 2.0

# --- the link: tries, probes and recovery ---
# How often a waiting try checks whether the worker answers again.
PROBE_INTERVAL_S = 0.25
# Probes overlap (a probe on a dead path waits out its timeout); at most this many.
MAX_PROBES = 4
# How soon a probe's answer is noticed.
PROBE_TICK_S = 0.05
# The cheap "is the worker's port back" probe (overlapping ones cover a long RTT).
PORT_PROBE_TIMEOUT_S = 1.0
# A failed link probes this young an outage as often as between tries, then at
# TETHER_FAILED_PROBE_S: the stream is back within a second of a path that returns
# within a minute, and a long outage costs only a packet every few seconds.
FAST_PROBE_S = 75.0
# A failed link's probing looks at least this often whether a stream still wants it.
PROBE_WANTED_CHECK_S = 1.0
# A loss sooner than this after a recovery continues the same outage episode.
STABLE_S = 5.0
# While waiting for media to flow after a (re)connect.
FLOW_POLL_S = 0.02
# A try whose socket is back gives the peer it had this long to come back by itself (a
# ping, its answer and the worker's next frame) before a new peer replaces it.
RESUME_GRACE_S = 0.4
# A parameter set not acknowledged this long is sent again.
PARAMS_RESEND_S = 1.0
# After a loss, an open signaling socket must answer a ping this soon (plus two of its
# round trips) to carry the next try; else it leads where the worker no longer is.
SOCKET_CHECK_S = 0.3
# Once the path is up, the socket gets at least this long to open and say 'ready'.
MIN_OPEN_S = 1.0
# While every worker of a fleet is busy, a failed link checks for a free slot this often.
ROOM_PROBE_S = 0.5
# How long a fleet's worker may take to report its load before it counts as unreachable.
FLEET_LOAD_TIMEOUT_S = 1.0

# --- the signaling socket ---
# Across a real network a dead socket must be noticed, and let go of, in about a second:
# websockets' defaults (10 s close timeout, 10 s open timeout) stall a reconnect by 10 s.
KEEPALIVE_S = 1.0  # a ping every second...
# ...and the socket is dead when one goes unanswered this long: longer than TCP's first
# three retransmits (0.2 + 0.4 + 0.8 s), so 20% loss is not an outage. The heartbeat,
# not this, is the fast detector.
PING_TIMEOUT_S = 2.0
CLOSE_TIMEOUT_S = 1.0  # waiting longer for a closing handshake gains nothing
OPEN_TIMEOUT_S = 2.0  # TCP + WebSocket handshake; a slow ``ready`` may take the rest
ICE_REFRESH_S = 300.0  # TURN credentials are minted for an hour or more: refresh well before

# --- media measures ---
STATS_POLL_S = 1.0  # how often a peer's stats are read
LOSS_WINDOW_S = 5.0  # loss is counted over about this much of the recent past
# The worker reports how it made a frame at most this often (one frame in three at 30 fps).
FRAME_TIMING_INTERVAL_S = 0.1

# --- the client's stream ---
# A new offer's stream takes over only once it connects; one that has not connected by
# then is dropped (a browser on the studio's machine connects in well under a second).
CLIENT_CONNECT_TIMEOUT_S = 10.0

# --- the worker ---
# A session's new peer connection that has not connected this long after its answer is
# given up, open signaling socket or not: a session that never connected is dropped and
# its slot freed (else it holds the slot until aiortc's ICE gives up, near a minute); a
# resumed one goes warm. Well above the studio's own ICE wait (TETHER_ICE_TIMEOUT_S, 3 s),
# as the studio's clients have CLIENT_CONNECT_TIMEOUT_S.
WORKER_CONNECT_TIMEOUT_S = 10.0
# A draining worker checks this often whether its last studio has left.
WORKER_DRAIN_CHECK_S = 0.05
# A worker started by `tether up` checks this often that its parent still runs.
PARENT_WATCH_S = 1.0
# A failing pipeline tells its studio about it at most this often.
PIPELINE_ERROR_REPORT_S = 1.0
# A pipeline's first call that has not returned after this long is loading (a lazy model
# load or warm-up), and says so to its studio...
PIPELINE_WARMUP_S = 0.5
# ...again this often while it loads (the studio shows the time so far).
PIPELINE_LOADING_REPORT_S = 1.0
# The pipeline's rate and time per frame, as the worker reports them, cover this window.
PIPELINE_METER_WINDOW_S = 2.0

# --- the aiortc adapter: receivers and senders ---
# An ICE consent check (every ~5 s, RFC 7675) waits this long for its answer: the
# request is sent again at 0.5 s and 1.5 s (STUN's doubling), so a path with a round
# trip of up to ~3 s keeps consent. aioice waits 0.5 s and sends once: on a path with
# 250 ms each way most checks timed out, and six in a row closed the link after 30 s.
ICE_CONSENT_ANSWER_S = 3.5
# A gap in a video stream waits this long for its retransmission (NACK), then the
# receiver skips the frame it broke and asks for a keyframe.
GAP_WAIT_S = 0.4
# A lost packet is asked for no longer than its gap waits.
NACK_GIVE_UP_S = GAP_WAIT_S
NACK_RTT_START_S = 0.1  # until a resend has been timed
NACK_MIN_RETRY_S = 0.02  # asking again sooner than this gains nothing
# A keyframe request is repeated at most this often while the keyframe is not in...
KEYFRAME_REQUEST_INTERVAL_S = 0.1
# ...and each request left unanswered doubles the wait, up to this (on a congested path
# every request adds a keyframe the path cannot carry; tether.rtc.keyframes).
KEYFRAME_REQUEST_MAX_S = 1.0
# A keyframe takes at most this much of the link's time at the encoder's bitrate (an
# unbounded one after each encoder restart was 15 KB: more than a 250 kbit/s path's
# queue holds, so it never arrived whole).
KEYFRAME_LINK_S = 0.2
# A receiver judges loss (for its bitrate estimate) over windows this long.
LOSS_CONTROL_WINDOW_S = 1.0
# A bitrate cap from downstream lapses unless renewed (REMB comes about every second).
BITRATE_CAP_TTL_S = 5.0
# The encoder: a higher bitrate must be asked for this long before it applies...
ENCODER_INCREASE_HOLD_S = 3.0
# ...and must leave room for the larger picture this long before the picture grows.
ENCODER_GROW_HOLD_S = 5.0
# The frame rate is estimated over this much media time.
ENCODER_FPS_WINDOW_S = 1.0

# --- the upstream frame rate (tether.media.rate) ---
# How often the rate governor re-reads the pipeline's pace...
RATE_LOOK_S = 0.5
# ...and how far back it counts the frames offered and sent.
RATE_WINDOW_S = 2.0

# --- the command line and its tools ---
# A tether process the CLI or a test starts must answer /health this soon.
START_DEADLINE_S = 30.0
# `tether up` restarts a worker that keeps dying after each delay in turn; the last repeats.
WORKER_RESTART_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
# A worker that stayed up this long starts the restart schedule over when it dies.
WORKER_STABLE_AFTER_S = 30.0
# `tether drain --wait` asks the worker how many sessions are left this often.
DRAIN_POLL_S = 0.25
# `tether run`: the worker's socket, its answer and the media path each get this long...
RUN_CONNECT_S = 10.0
# ...and a frame that takes longer than this on the worker means the worker is stuck.
RUN_FRAME_TIMEOUT_S = 15.0


# --- the studio's HTTP side and its output track ---
# A request body must arrive in full within this long (else 408).
BODY_TIMEOUT_S = 10.0
# An open status event stream looks at the status at least this often.
STATUS_EVENTS_WAKE_S = 1.0
# The client's output track looks for a frame at least this often, whatever wakes it.
OUTPUT_WAKE_S = 0.5
# A closing held picture waits this long for its decoding thread to end.
HOLD_DECODER_JOIN_S = 2.0


class LinkTimingSettings(Protocol):
    """The settings that carry the user's timings (the studio's settings have them)."""

    heartbeat_interval_s: float
    heartbeat_timeout_s: float
    signaling_timeout_s: float
    offer_timeout_s: float
    ice_timeout_s: float
    flow_timeout_s: float
    failed_probe_s: float


@dataclass(frozen=True)
class Timing:
    """The timings a user can set (TETHER_* settings)."""

    heartbeat_interval_s: float = 0.5
    heartbeat_timeout_s: float = 1.5  # 0: heartbeat and watchdog off
    signaling_timeout_s: float = 1.5  # open the socket and get 'ready'
    offer_timeout_s: float = 2.0  # the worker's answer, plus the measured round trip
    ice_timeout_s: float = 3.0  # ICE/DTLS and the data channel
    flow_timeout_s: float = 3.0  # first processed frame and the parameter ack
    failed_probe_s: float = 5.0  # probing cadence once failed; 0: off

    @classmethod
    def from_settings(cls, settings: LinkTimingSettings) -> Timing:
        return cls(
            heartbeat_interval_s=settings.heartbeat_interval_s,
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
            signaling_timeout_s=settings.signaling_timeout_s,
            offer_timeout_s=settings.offer_timeout_s,
            ice_timeout_s=settings.ice_timeout_s,
            flow_timeout_s=settings.flow_timeout_s,
            failed_probe_s=settings.failed_probe_s,
        )

    @property
    def heartbeat_on(self) -> bool:
        return self.heartbeat_timeout_s > 0
