"""Check an offer's SDP in full before any peer connection sees it: bounded size,
parses, one video section in a codec we can decode, a DTLS fingerprint we can verify
and ICE credentials. A bad offer is refused here, in words, before it can end a
running stream or touch a session (the studio and the worker both call this)."""

from __future__ import annotations

import re

from aiortc.codecs import CODECS
from aiortc.sdp import MediaDescription, SessionDescription

# A browser's offer is 3-10 kB with 1-3 media sections; far past that is not a real
# offer, and aiortc's parser (which runs on the event loop) slows with every section.
MAX_SDP_BYTES = 32 * 1024
MAX_MEDIA_SECTIONS = 8

_VIDEO = {c.mimeType.lower() for c in CODECS["video"] if not c.mimeType.endswith("/rtx")}

# DTLS can only start on a fingerprint aiortc verifies: SHA-2, in bytes of this many.
FINGERPRINT_BYTES = {"sha-256": 32, "sha-384": 48, "sha-512": 64}
# RFC 8839: ice-char is ALPHA / DIGIT / "+" / "/"; a ufrag has 4-256, a password 22-256.
_ICE_UFRAG = re.compile(r"[A-Za-z0-9+/]{4,256}")
_ICE_PWD = re.compile(r"[A-Za-z0-9+/]{22,256}")


class BadOffer(ValueError):
    pass


def check_offer_sdp(sdp: str) -> None:
    """Raise BadOffer with a plain reason unless ``sdp`` is an offer we could answer
    and connect."""
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
    if len(video) > 1:
        raise BadOffer(f"the offer has {len(video)} video sections; one is taken")
    (section,) = video
    if not any(c.mimeType.lower() in _VIDEO for c in section.rtp.codecs):
        raise BadOffer(f"the offer has no video codec we support ({', '.join(sorted(_VIDEO))})")
    _check_fingerprints(section)
    _check_ice_credentials(section)


def _check_fingerprints(section: MediaDescription) -> None:
    fingerprints = section.dtls.fingerprints if section.dtls else []
    usable = 0
    for fingerprint in fingerprints:
        size = FINGERPRINT_BYTES.get(fingerprint.algorithm.lower())
        if size is None:
            continue  # md5, sha-1: ignored by DTLS, as long as a SHA-2 one is there
        if not _is_hex_pairs(fingerprint.value, size):
            raise BadOffer(
                f"the offer's {fingerprint.algorithm} DTLS fingerprint is not {size} hex bytes"
            )
        usable += 1
    if not usable:
        raise BadOffer(
            "the offer has no DTLS fingerprint we can verify (a=fingerprint with "
            f"{', '.join(FINGERPRINT_BYTES)})"
        )


def _is_hex_pairs(value: str, size: int) -> bool:
    pairs = value.split(":")
    return len(pairs) == size and all(re.fullmatch(r"[0-9A-Fa-f]{2}", p) for p in pairs)


def _check_ice_credentials(section: MediaDescription) -> None:
    ice = section.ice
    if ice is None or not ice.usernameFragment or not ice.password:
        raise BadOffer("the offer has no ICE credentials (a=ice-ufrag and a=ice-pwd)")
    if not _ICE_UFRAG.fullmatch(ice.usernameFragment):
        raise BadOffer("the offer's ICE username fragment is not 4-256 ICE characters")
    if not _ICE_PWD.fullmatch(ice.password):
        raise BadOffer("the offer's ICE password is not 22-256 ICE characters")
