"""An offer is checked in full before anything changes: a real aiortc offer passes,
and each way of breaking it is refused in words (issue: a broken offer took over)."""

from __future__ import annotations

import re

import pytest

from tests.helpers import real_offer
from tether.media.sdp_check import BadOffer, check_offer_sdp


@pytest.fixture
async def offer() -> str:
    pc, sdp = await real_offer()
    await pc.close()
    return sdp


def _video_section(sdp: str) -> str:
    return sdp[sdp.index("m=video") :]


def _without(sdp: str, prefix: str) -> str:
    return "".join(line for line in sdp.splitlines(keepends=True) if not line.startswith(prefix))


def _replace(sdp: str, prefix: str, line: str) -> str:
    return re.sub(rf"^{re.escape(prefix)}.*$", line, sdp, flags=re.M)


def test_a_real_offer_passes(offer: str) -> None:
    check_offer_sdp(offer)


BREAKS = {
    "no fingerprint": (lambda s: _without(s, "a=fingerprint"), "no DTLS fingerprint"),
    "md5 fingerprint": (
        lambda s: _replace(s, "a=fingerprint", "a=fingerprint:md5 " + ":".join(["AB"] * 16)),
        "no DTLS fingerprint we can verify",
    ),
    "sha-1 fingerprint": (
        lambda s: _replace(s, "a=fingerprint", "a=fingerprint:sha-1 " + ":".join(["AB"] * 20)),
        "no DTLS fingerprint we can verify",
    ),
    "short sha-256": (
        lambda s: _replace(s, "a=fingerprint", "a=fingerprint:sha-256 AB:CD"),
        "not 32 hex bytes",
    ),
    "no ice-ufrag": (lambda s: _without(s, "a=ice-ufrag"), "no ICE credentials"),
    "no ice-pwd": (lambda s: _without(s, "a=ice-pwd"), "no ICE credentials"),
    "short ice-pwd": (lambda s: _replace(s, "a=ice-pwd", "a=ice-pwd:short"), "ICE password"),
    "bad ice-ufrag": (lambda s: _replace(s, "a=ice-ufrag", "a=ice-ufrag:a b!"), "username"),
    "two video sections": (lambda s: s + _video_section(s), "2 video sections"),
    "eight video sections": (lambda s: s + _video_section(s) * 7, "8 video sections"),
    "no video codec": (
        lambda s: re.sub(r"VP8/90000|H264/90000", "NOPE/90000", s),
        "no video codec",
    ),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_a_broken_offer_is_refused_in_words(offer: str, name: str) -> None:
    broken, needle = BREAKS[name]
    with pytest.raises(BadOffer, match=needle) as info:
        check_offer_sdp(broken(offer))
    assert "Error" not in str(info.value)  # words, not exception class names


def test_a_sha_256_beside_an_md5_is_enough(offer: str) -> None:
    extra = "a=fingerprint:md5 " + ":".join(["AB"] * 16) + "\r\n"
    check_offer_sdp(offer.replace("a=fingerprint", extra + "a=fingerprint", 1))
