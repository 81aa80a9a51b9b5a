"""ICE servers from the worker's configuration, and coturn REST-scheme credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from pydantic import ValidationError

from tether.config import WorkerSettings
from tether.worker.ice import IceConfigError, IceServers, parse_ice_servers, turn_credentials


def test_fixed_servers_from_urls_or_json() -> None:
    assert parse_ice_servers("") == []
    assert parse_ice_servers("stun:a.example:3478, turn:b.example:3478?transport=tcp") == [
        {"urls": ["stun:a.example:3478"]},
        {"urls": ["turn:b.example:3478?transport=tcp"]},
    ]
    servers = parse_ice_servers('[{"urls": "turn:t.example", "username": "u", "credential": "c"}]')
    assert servers == [{"urls": ["turn:t.example"], "username": "u", "credential": "c"}]


@pytest.mark.parametrize(
    "bad", ["http://x.example", "[{}]", "[not json", '[{"urls": "ftp://x"}]']
)  # fmt: skip
def test_bad_servers_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(IceConfigError):
        parse_ice_servers(bad)


def test_bad_servers_stop_the_worker_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_ICE_SERVERS", "http://not-ice.example")
    with pytest.raises(ValidationError, match="must start with stun"):
        WorkerSettings()


def test_turn_credentials_are_coturns_rest_scheme_and_expire() -> None:
    user, password = turn_credentials("s3cret", "conn1", ttl_s=600, now=1_000_000.4)
    assert user == "1000600:conn1"
    expected = hmac.new(b"s3cret", user.encode(), hashlib.sha1).digest()
    assert base64.b64decode(password) == expected
    ice = IceServers(
        "stun:s.example", "turn:t.example:3478", "s3cret", turn_ttl_s=60, wall_clock=lambda: 100.0
    )
    stun, turn = ice.servers("c")
    assert stun == {"urls": ["stun:s.example"]}
    assert turn["urls"] == ["turn:t.example:3478"] and turn["username"] == "160:c"


def test_turn_needs_a_secret_and_turn_urls() -> None:
    with pytest.raises(IceConfigError, match="TETHER_TURN_SECRET"):
        IceServers(turn_urls="turn:t.example")
    with pytest.raises(IceConfigError, match="turn: or turns:"):
        IceServers(turn_urls="stun:t.example", turn_secret="x")
