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


def test_channel_messages_round_trip() -> None:
    for message in [
        protocol.Parameters(version=3, parameters={"pipeline": "gray"}),
        protocol.ParametersAck(version=3),
        protocol.ParametersError(version=4, message="strength: too big"),
        protocol.HeartbeatPing(seq=3, t=1.5),
        protocol.HeartbeatPong(seq=3, t=1.5),
        protocol.ChannelError(message="what?"),
        protocol.PipelineError(count=2, message="tint: boom"),
        protocol.PipelineError(count=2, message=None),
        protocol.FrameTiming(input=4_294_967_295, output=0, worker_ms=12.5),
    ]:
        assert protocol.parse_channel_message(protocol.encode(message)) == message


def test_frame_timing_is_small() -> None:
    # Up to ten a second on the heartbeat's channel: it must stay a single small packet.
    worst = protocol.FrameTiming(input=4_294_967_295, output=4_294_967_295, worker_ms=999.99)
    assert len(protocol.encode(worst)) <= 80


def test_pipeline_error_wire_format() -> None:
    raw = '{"type":"pipeline_error","count":7,"message":null}'
    assert protocol.parse_channel_message(raw) == protocol.PipelineError(count=7)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("[]", "object"),
        ("nope", "JSON"),
        ('{"type": "dance"}', "unknown message type"),
        ('{"type": "parameters", "version": "x", "parameters": {}}', "version"),
        ('{"type": "parameters_ack"}', "version"),
        ('{"type": "timing", "input": 4294967296, "output": 1, "worker_ms": 1}', "input"),
        ('{"type": "timing", "input": 1, "output": 1, "worker_ms": -1}', "worker_ms"),
    ],
)
def test_bad_channel_messages(raw: str, needle: str) -> None:
    with pytest.raises(protocol.ProtocolError) as info:
        protocol.parse_channel_message(raw)
    assert needle in str(info.value)


def test_the_studio_offer_is_the_protocol_model() -> None:
    offer = protocol.Offer(
        type="offer", sdp="v=0", initial_parameters={"a": 1}, parameters_version=2
    )
    wire = offer.model_dump(by_alias=True, exclude_none=True)
    assert wire == {
        "type": "offer", "sdp": "v=0", "sdp_type": "offer", "initialParameters": {"a": 1},
        "parameters_version": 2,
    }  # fmt: skip
    assert protocol.parse_studio_message(protocol.json_dumps(wire)) == offer
