"""Pure pieces of the security layer: host names, origins, bounded JSON, parameter
schemas, SDP checks and the log filter."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether import safe_json
from tether.cli.redact import RedactSecrets
from tether.media.sdp_check import BadOffer, check_offer_sdp
from tether.studio.guard import GuardPolicy, same_origin, split_host
from tether.studio.param_schema import MAX_PARAMETERS_BYTES, ParametersRejected, check_update


@pytest.mark.parametrize(
    ("policy", "host", "ok"),
    [
        (GuardPolicy(), "127.0.0.1:8000", True),
        (GuardPolicy(), "localhost:8000", True),
        (GuardPolicy(), "LOCALHOST.", True),
        (GuardPolicy(), "[::1]:8000", True),
        (GuardPolicy(), "127.3.4.5", True),
        (GuardPolicy(), "evil.example:8000", False),
        (GuardPolicy(), "localhost.evil.example", False),
        (GuardPolicy(), "", False),
        (GuardPolicy(), None, False),
        (GuardPolicy(), "[::1", False),
        (GuardPolicy(), "192.168.1.9:8000", False),
        (GuardPolicy("192.168.1.9"), "192.168.1.9:8000", True),
        (GuardPolicy("0.0.0.0"), "10.1.2.3:8000", True),
        (GuardPolicy("0.0.0.0"), "studio.lan", False),
        (GuardPolicy("0.0.0.0", ["studio.lan"]), "Studio.LAN:8000", True),
        (GuardPolicy(allow_hosts=["*"]), "anything", True),
    ],
)
def test_host_allowlist(policy: GuardPolicy, host: str | None, ok: bool) -> None:
    assert policy.host_allowed(host) is ok


def test_origin_must_be_the_studio_itself() -> None:
    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000", "http")
    assert not same_origin("http://127.0.0.1:8001", "127.0.0.1:8000", "http")
    assert not same_origin("https://127.0.0.1:8000", "127.0.0.1:8000", "http")
    assert not same_origin("null", "127.0.0.1:8000", "http")
    assert not same_origin("http://[::1", "127.0.0.1:8000", "http")
    assert split_host("[::1]:80") == "::1" and split_host("a.b:1") == "a.b"


def test_token_compare() -> None:
    assert GuardPolicy(token="t").token_ok("t")
    assert not GuardPolicy(token="t").token_ok("u") and not GuardPolicy(token="t").token_ok(None)
    assert GuardPolicy().token_ok(None)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("[" * 100_000 + "]" * 100_000, "deeper"),
        ("[" * 33 + "]" * 33, "deeper"),
        ("1" * 5000, "acceptable"),
        (b"\xff\xfe\x00", "UTF-8"),
        ("{", "not valid JSON"),
        ("x" * 11, "larger"),
    ],
)
def test_bad_json_is_one_error(raw: str | bytes, needle: str) -> None:
    with pytest.raises(safe_json.BadJson, match=needle):
        safe_json.loads(raw, 10 if raw == "x" * 11 else 10**7)


@given(st.recursive(st.integers(), lambda c: st.lists(c, max_size=3), max_leaves=30))
def test_depth_matches_a_recursive_count(value: object) -> None:
    def rec(v: object) -> int:
        return 1 + max(map(rec, v), default=0) if isinstance(v, list) else 0

    assert safe_json.depth(value) == rec(value)


CATALOG = [
    {"name": "passthrough", "parameters": {"properties": {}, "type": "object"}},
    {
        "name": "note",
        "parameters": {
            "properties": {"text": {"type": "string"}, "level": {"maximum": 1, "type": "number"}},
            "type": "object",
        },
    },
]


def test_parameters_checked_against_the_chosen_schema() -> None:
    merged = check_update(CATALOG, {}, {"pipeline": "note", "text": "hi"})
    assert merged == {"pipeline": "note", "text": "hi"}
    for changes, field in [
        ({"level": 5}, "level"),
        ({"level": "high"}, "level"),
        ({"colour": 1}, "colour"),
        ({"pipeline": "nope"}, "pipeline"),
        ({"pipeline": "passthrough", "text": "x"}, "text"),
        ({"text": "x" * MAX_PARAMETERS_BYTES}, "parameters"),
    ]:
        with pytest.raises(ParametersRejected) as info:
            check_update(CATALOG, merged, changes)
        assert info.value.field == field, changes
    # keys of an earlier pipeline may linger; None removes a key
    assert check_update(CATALOG, merged, {"pipeline": "passthrough"})["text"] == "hi"
    assert "text" not in check_update(CATALOG, merged, {"text": None})


SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("sdp", "needle"),
    [
        ("garbage", "no video"),
        (SDP + "m=video abc UDP/TLS/RTP/SAVPF 96\r\n", "parse"),
        (SDP + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", "no video"),
        (SDP + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 NOPE/90000\r\n", "codec"),
        (SDP + "a=x\r\n" * 20_000, "larger"),
        (SDP + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n" * 9, "sections"),
    ],
)
def test_bad_offers(sdp: str, needle: str) -> None:
    with pytest.raises(BadOffer, match=needle):
        check_offer_sdp(sdp)


def test_redaction_filter_masks_secrets_in_messages_and_args() -> None:
    redact = RedactSecrets(["s3cret-value"])
    record = logging.LogRecord(
        "x", logging.DEBUG, __file__, 1, "%s %s", ("GET /ws?token=abc", "s3cret-value"), None
    )
    redact.filter(record)
    assert record.getMessage() == "GET /ws?token=*** ***"
    for text, out in [
        ("> Authorization: Bearer abc.def", "> Authorization: Bearer ***"),
        ('{"resume_secret": "q"}', '{"resume_secret": "***"}'),
        ("cookie: tether_studio_token=zz; a=1", "cookie: tether_studio_token=***; a=1"),
        ("missing token: authentication failed", "missing token: authentication failed"),
    ]:
        assert redact.redact(text) == out


def test_multiple_of_is_checked_as_the_worker_checks_it() -> None:
    # 0.3 / 0.05 is 5.999... in floating point: plain jsonschema refuses what the
    # worker's pydantic model accepts.
    catalog = [
        {
            "name": "tint",
            "parameters": {
                "type": "object",
                "properties": {"strength": {"type": "number", "multipleOf": 0.05}},
            },
        }
    ]
    for ok in (0.3, 0.35, 0.7, 0.95):
        assert check_update(catalog, {}, {"pipeline": "tint", "strength": ok})["strength"] == ok
    with pytest.raises(ParametersRejected, match="strength"):
        check_update(catalog, {}, {"pipeline": "tint", "strength": 0.33})


@pytest.mark.parametrize(
    "header",
    [
        "127.0.0.1:8000@evil.com",
        "127.0.0.1:abc",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:8000:1",
        "localhost/evil",
        "[::1",
        "[evil.com]:80",
        "127.0.0.1 :80",
        "",
    ],
)
def test_a_host_header_that_is_not_a_host_and_port_is_refused(header: str) -> None:
    assert split_host(header) == ""
    assert not GuardPolicy(allow_hosts=["evil.com"]).host_allowed(header)


def test_worker_urls_with_odd_characters_are_refused() -> None:
    from tether.studio.fleet import parse_worker_specs

    for odd in ["\n", "\x00", "\u200f", "\u202e", "\t", "\u00a0"]:
        with pytest.raises(ValueError, match="U\\+"):
            parse_worker_specs([f"http://127.0.0.1:8765{odd}"])
    assert parse_worker_specs([" "]) == []
    assert parse_worker_specs(["http://127.0.0.1:8765, http://[::1]:8766"]) == [
        "http://127.0.0.1:8765",
        "http://[::1]:8766",
    ]
