import pytest
from pydantic import ValidationError

from tether.config import Fallback, StudioSettings, WorkerSettings


def test_defaults_match_design() -> None:
    s = StudioSettings()
    assert s.host == "127.0.0.1" and s.port == 8000
    assert s.reconnect_delays == [0.0, 1.0, 2.0, 4.0]
    assert s.fallback is Fallback.HOLD
    assert (s.heartbeat_interval_s, s.heartbeat_timeout_s) == (0.5, 1.5)
    assert WorkerSettings().session_grace_s == 30.0


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_RECONNECT_DELAYS", "0, 0.5,3")
    monkeypatch.setenv("TETHER_FALLBACK", "black")
    monkeypatch.setenv("TETHER_DEBUG_ENDPOINTS", "1")
    monkeypatch.setenv("TETHER_WORKER_TOKEN", "s3cr3t-value")
    s = StudioSettings()
    assert s.reconnect_delays == [0.0, 0.5, 3.0]
    assert s.fallback is Fallback.BLACK and s.debug_endpoints
    assert s.worker_token is not None and s.worker_token.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t" not in repr(s)
    assert WorkerSettings().token.get_secret_value() == "s3cr3t-value"


@pytest.mark.parametrize("value", ["a,b", "-1", ""])
def test_bad_delays_say_what_is_wrong(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TETHER_RECONNECT_DELAYS", value)
    with pytest.raises(ValidationError, match="delays"):
        StudioSettings()
