"""The aiortc adapter belongs to the app: built from its settings, installed for its
lifespan, undone after, nested safely, and refused on an aiortc it was not checked
against."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any

import aioice.ice
import aiortc
import aiortc.codecs.vpx as vpx
import aiortc.rtcrtpreceiver as receiver
import aiortc.rtcrtpsender as sender
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tests.helpers import aiortc_globals
from tether.config import StudioSettings, WorkerSettings
from tether.rtc.adapter import MediaAdapter, active
from tether.rtc.eager_release import EagerJitterBuffer, PacedNackGenerator
from tether.rtc.encoder import BITRATE_FLOOR_BPS, fitted_get_encoder
from tether.rtc.ice import is_loopback_host, loopback_host_addresses
from tether.rtc.version import SUPPORTED_AIORTC, UnsupportedAiortc, supported
from tether.studio.app import create_studio_app, studio_media
from tether.worker.app import create_worker_app

ROOT = Path(__file__).resolve().parents[2]


def assert_tethers(floor: int = BITRATE_FLOOR_BPS) -> None:
    assert receiver.JitterBuffer is EagerJitterBuffer
    assert receiver.NackGenerator is PacedNackGenerator
    assert sender.get_encoder is fitted_get_encoder
    assert floor == vpx.MIN_BITRATE


def test_pyproject_pins_the_range_the_adapter_checks() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.startswith("aiortc")]
    assert pins == [f"aiortc{SUPPORTED_AIORTC}"]
    assert supported(aiortc.__version__)


@pytest.mark.parametrize("version", ["1.15.2", "1.17.0", "2.0.0", "unknown"])
def test_an_unsupported_aiortc_refuses_to_install(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    before, was_active = aiortc_globals(), active()
    monkeypatch.setattr(aiortc, "__version__", version)
    with pytest.raises(UnsupportedAiortc, match=rf"supports aiortc >=1\.16,<1\.17.*{version}"):
        MediaAdapter().install()
    assert aiortc_globals() == before and active() == was_active


def test_an_app_on_an_unsupported_aiortc_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc, "__version__", "1.17.1")
    app = create_worker_app(WorkerSettings(token="t"))
    with pytest.raises(UnsupportedAiortc, match="aiortc >=1.16,<1.17"), TestClient(app):
        pass


def test_a_later_patch_release_is_supported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc, "__version__", "1.16.7")
    with MediaAdapter().installed():
        assert_tethers()


def test_installs_nest_and_the_last_uninstall_restores_what_was_there() -> None:
    before = aiortc_globals()
    tethers, plain = MediaAdapter(ice_hosts="loopback"), MediaAdapter.stock()
    tethers.install()
    assert_tethers()
    assert aioice.ice.get_host_addresses is loopback_host_addresses
    plain.install()  # installed last: it applies
    assert receiver.JitterBuffer is not EagerJitterBuffer
    assert sender.get_encoder is not fitted_get_encoder
    assert active() is plain
    tethers.uninstall()  # out of order: the one left still applies
    assert active() is plain and receiver.JitterBuffer is not EagerJitterBuffer
    plain.uninstall()
    assert aiortc_globals() == before


def test_the_same_settings_twice_keep_a_carried_bitrate() -> None:
    """`tether run` and its embedded worker, or a studio and a worker in one process."""
    before = aiortc_globals()
    first, second = MediaAdapter(), MediaAdapter()
    with first.installed():
        vpx.DEFAULT_BITRATE = 123_000  # as carry_bitrate does
        with second.installed():
            assert vpx.DEFAULT_BITRATE == 123_000
        assert vpx.DEFAULT_BITRATE == 123_000
    assert aiortc_globals() == before


def test_uninstalling_what_is_not_installed_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not installed"):
        MediaAdapter().uninstall()


def test_the_worker_app_installs_it_for_its_lifespan() -> None:
    before = aiortc_globals()
    app = create_worker_app(WorkerSettings(token="t", ice_hosts="loopback"))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert_tethers()
        assert aioice.ice.get_host_addresses is loopback_host_addresses
        assert active() == MediaAdapter(ice_hosts="loopback")
    assert aiortc_globals() == before


def test_the_studio_app_installs_it_for_its_lifespan() -> None:
    before = aiortc_globals()
    app = create_studio_app(StudioSettings(eager_release=False))
    with TestClient(app):
        assert active() == MediaAdapter(eager_release=False, ice_hosts="loopback")
        assert receiver.JitterBuffer is not EagerJitterBuffer
        assert sender.get_encoder is fitted_get_encoder
    assert aiortc_globals() == before


@pytest.mark.parametrize(
    ("settings", "ice_hosts"),
    [
        ({}, "loopback"),
        ({"worker_url": "http://127.0.0.1:8765,http://localhost:8766"}, "loopback"),
        ({"worker_url": "http://gpu.example.com:8765"}, "all"),
        ({"worker_url": "dns+http://workers.example.com:8765"}, "all"),
        ({"host": "0.0.0.0"}, "all"),  # the browser may be anywhere
        ({"ice_hosts": "loopback", "host": "0.0.0.0"}, "loopback"),
        ({"ice_hosts": "all"}, "all"),
    ],
)
def test_the_studio_resolves_auto_from_its_peers(settings: dict, ice_hosts: str) -> None:
    assert studio_media(StudioSettings(**settings)).ice_hosts == ice_hosts


def test_ice_hosts_is_a_checked_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_ICE_HOSTS", "all")
    assert WorkerSettings().ice_hosts == "all"
    monkeypatch.setenv("TETHER_ICE_HOSTS", "everywhere")
    with pytest.raises(ValidationError, match="ice_hosts"):
        StudioSettings()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("ip6-localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_one_answer_to_whether_a_host_is_this_machine(host: str, loopback: bool) -> None:
    """ICE's "auto" and the studio's Host check ask the same function."""
    from tether.studio import guard

    assert is_loopback_host(host) is loopback
    assert guard.is_loopback_host is is_loopback_host


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("worker", ["--token", "t", "--ice-hosts", "all"]),
        ("studio", ["--host", "0.0.0.0", "--ice-hosts", "loopback"]),  # "auto" gives all
    ],
)
def test_the_cli_serves_the_app_that_installs_its_own_adapter(
    monkeypatch: pytest.MonkeyPatch, command: str, args: list[str]
) -> None:
    """The command only turns its flags into settings: the adapter its process gets is
    the one an embedding program gets from create_*_app with those settings."""
    from typer.testing import CliRunner

    from tether.cli import app as cli

    module = importlib.import_module(f"tether.cli.{command}")
    served: list[Any] = []
    monkeypatch.setattr(module, "serve", lambda app, *a, **k: served.append(app))
    monkeypatch.setattr(module, "setup_logging", lambda *a: None)
    result = CliRunner().invoke(cli, [command, *args])
    assert result.exit_code == 0, result.output
    before = aiortc_globals()
    with TestClient(served[0]):
        assert_tethers()
        expected = "all" if command == "worker" else "loopback"
        assert active() == MediaAdapter(ice_hosts=expected)
    assert aiortc_globals() == before
