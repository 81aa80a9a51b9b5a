"""Check an offer's SDP before any peer connection sees it: bounded size, parses,
has video in a codec we can decode. A bad offer is refused here, before it can end a
running stream or touch a session."""

from __future__ import annotations

from aiortc.codecs import CODECS
from aiortc.sdp import SessionDescription

# A browser's offer is 3-10 kB with 1-3 media sections; far past that is not a real
# offer, and aiortc's parser (which runs on the event loop) slows with every section.
MAX_SDP_BYTES = 32 * 1024
MAX_MEDIA_SECTIONS = 8

_VIDEO = {c.mimeType.lower() for c in CODECS["video"] if not c.mimeType.endswith("/rtx")}


class BadOffer(ValueError):
    pass


def check_offer_sdp(sdp: str) -> None:
    """Raise BadOffer with a plain reason unless ``sdp`` is an offer we could answer."""
    if len(sdp.encode("utf-8", errors="replace")) > MAX_SDP_BYTES:
        raise BadOffer(f"the SDP is larger than {MAX_SDP_BYTES} bytes")
    if sdp.count("\nm=") > MAX_MEDIA_SECTIONS:
        raise BadOffer(f"the SDP has more than {MAX_MEDIA_SECTIONS} media sections")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception:  # aiortc's parser raises anything from AssertionError to IndexError
        raise BadOffer("the SDP does not parse") from None
    video = [m for m in parsed.media if m.kind == "video"]
    if not video:
        raise BadOffer("the offer has no video track")
    if not any(c.mimeType.lower() in _VIDEO for m in video for c in m.rtp.codecs):
        raise BadOffer(f"the offer has no video codec we support ({', '.join(sorted(_VIDEO))})")
