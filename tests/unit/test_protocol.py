import json

import pytest

from tether import protocol


def test_offer_parses_with_design_names() -> None:
    msg = protocol.parse_studio_message(
        json.dumps(
            {
                "type": "offer",
                "request_id": "r1",
                "sdp": "v=0",
                "sdp_type": "offer",
                "initialParameters": {"pipeline": "gray"},
                "resume_session_id": "abc",
            }
        )
    )
    assert isinstance(msg, protocol.Offer)
    assert msg.initial_parameters == {"pipeline": "gray"}
    assert msg.resume_session_id == "abc" and msg.request_id == "r1"


@pytest.mark.parametrize(
    ("raw", "needle", "request_id"),
    [
        ("{", "not valid JSON", None),
        ("42", "JSON object", None),
        ('{"request_id": "x"}', "no 'type'", "x"),
        ('{"type": "dance", "request_id": "y"}', "unknown message type 'dance'", "y"),
        ('{"type": "offer", "request_id": "z"}', "sdp", "z"),
        ('{"type": "ping", "t": "soon"}', "t", None),
    ],
)
def test_bad_messages_raise_protocol_error(raw: str, needle: str, request_id: str | None) -> None:
    with pytest.raises(protocol.ProtocolError) as info:
        protocol.parse_studio_message(raw)
    assert needle in str(info.value)
    assert info.value.request_id == request_id


def test_channel_messages() -> None:
    assert protocol.decode_channel_message(protocol.heartbeat_ping(3, 1.5)) == {
        "type": "ping",
        "seq": 3,
        "t": 1.5,
    }
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_channel_message("[]")
