"""Worker-to-studio signaling messages: each one survives the wire, keeps the wire's
keys, and a message the studio cannot read is a ProtocolError that says why."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tether import protocol

MESSAGES = [
    protocol.Ready(connection_id="c1", instance_id="i1", pipelines=[{"name": "gray"}]),
    protocol.Answer(request_id="r1", sdp="v=0", session_id="s1", resumed=False, resume_secret="k"),
    protocol.WorkerError(request_id="r2", code="busy", message="full"),
    protocol.WorkerError(request_id=None, code="internal", message="internal error"),
    protocol.Pong(request_id="r3", t=1.5),
    protocol.Pong(request_id="r4", t=None),
    protocol.IceServersReply(request_id="r5", ice_servers=[{"urls": ["stun:a:3478"]}]),
    protocol.Draining(deadline_s=30),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.type)
def test_worker_messages_round_trip(message: protocol.WorkerMessage) -> None:
    assert protocol.parse_worker_message(protocol.encode(message)) == message


def test_the_wire_format_is_what_the_worker_always_sent() -> None:
    """The keys, their order and their values as the dicts of old had them."""
    wire = [json.loads(protocol.encode(m)) for m in MESSAGES]
    assert wire[0] == {
        "type": "ready", "connection_id": "c1", "instance_id": "i1",
        "pipelines": [{"name": "gray"}],
    }  # fmt: skip
    assert list(wire[1]) == [
        "type", "request_id", "sdp", "sdp_type", "sessionId", "resumed", "resume_secret",
    ]  # fmt: skip
    assert wire[1]["sdp_type"] == "answer" and wire[1]["sessionId"] == "s1"
    assert wire[2] == {"type": "error", "request_id": "r2", "code": "busy", "message": "full"}
    assert wire[3]["request_id"] is None
    assert wire[5] == {"type": "pong", "request_id": "r4", "t": None}
    assert list(wire[6]) == ["type", "request_id", "ice_servers"]
    assert wire[7] == {"type": "draining", "deadline_s": 30.0}
    assert protocol.encode(MESSAGES[7]) == '{"type":"draining","deadline_s":30.0}'


def test_messages_are_frozen_and_ignore_extra_keys() -> None:
    with pytest.raises(ValidationError):
        MESSAGES[0].connection_id = "other"  # type: ignore[misc]
    raw = '{"type":"draining","deadline_s":5,"reason":"upgrade"}'
    assert protocol.parse_worker_message(raw) == protocol.Draining(deadline_s=5)


def test_an_error_without_a_code_is_a_bad_request() -> None:
    raw = '{"type":"error","request_id":"r1","message":"no"}'
    assert protocol.parse_worker_message(raw) == protocol.WorkerError(
        request_id="r1", code="bad_request", message="no"
    )


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("{", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"connection_id": "c"}', "no 'type'"),
        ('{"type": "hello"}', "unknown message type 'hello'"),
        ('{"type": "ready", "instance_id": "i"}', "connection_id: Field required"),
        ('{"type": "answer", "request_id": "r", "sdp": "v=0"}', "sessionId"),
        ('{"type": "draining", "deadline_s": "soon"}', "deadline_s"),
        ('{"type": "pong", "request_id": "r", "t": "x"}', "t"),
    ],
)
def test_unreadable_worker_messages_say_why(raw: str, needle: str) -> None:
    with pytest.raises(protocol.ProtocolError) as info:
        protocol.parse_worker_message(raw)
    assert needle in str(info.value)


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(protocol.ProtocolError) as info:
        protocol.parse_worker_message('{"type": "dance", "request_id": "r9"}')
    assert "expected one of ready, answer, error, pong, ice_servers, draining" in str(info.value)
    assert info.value.request_id == "r9"


def test_a_request_is_sent_as_before() -> None:
    """Unset fields left out and the id last, as the studio's dicts were."""
    ask = protocol.GetIceServers(type="get_ice_servers")
    assert protocol.request_text(ask, "r1") == '{"type":"get_ice_servers","request_id":"r1"}'
    offer = protocol.Offer(type="offer", sdp="v=0", parameters_version=2)
    assert json.loads(protocol.request_text(offer, "r2")) == {
        "type": "offer", "sdp": "v=0", "sdp_type": "offer", "initialParameters": {},
        "parameters_version": 2, "request_id": "r2",
    }  # fmt: skip
