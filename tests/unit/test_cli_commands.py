"""The command's shape: its subcommands in help order, and the serving options that
`tether worker` and `tether studio` share (flags, environment variables, order)."""

from __future__ import annotations

import typer
from typer.main import get_command
from typer.testing import CliRunner

from tether.cli import app
from tether.cli.options import Serving, with_serving_options

SERVING_FLAGS = [
    ("--ssl-certfile", "TETHER_SSL_CERTFILE"),
    ("--ssl-keyfile", "TETHER_SSL_KEYFILE"),
    ("--ice-hosts", "TETHER_ICE_HOSTS"),
    ("--log-level", "TETHER_LOG_LEVEL"),
]


def test_the_subcommands_in_help_order() -> None:
    names = list(get_command(app).commands)  # type: ignore[attr-defined]
    assert names == ["worker", "studio", "up", "run", "drain", "status", "doctor", "pipelines"]


def test_every_doctor_flag_has_its_environment_variable() -> None:
    params = get_command(app).commands["doctor"].params  # type: ignore[attr-defined]
    missing = [p.opts[0] for p in params if p.opts[0] != "--help" and not p.envvar]
    assert not missing, missing


def test_worker_and_studio_end_with_the_serving_options() -> None:
    commands = get_command(app).commands  # type: ignore[attr-defined]
    for name in ("worker", "studio"):
        params = commands[name].params
        tail = [(p.opts[0], p.envvar) for p in params[-len(SERVING_FLAGS) :]]
        assert tail == SERVING_FLAGS, name
        assert "--token-file" in {o for p in params for o in p.opts}


def test_serving_options_reach_the_command_as_one_value() -> None:
    seen: list[tuple[str, Serving]] = []

    @with_serving_options
    def serve_it(name: str = "x", serving: Serving = Serving()) -> None:
        seen.append((name, serving))

    probe = typer.Typer()
    probe.command()(serve_it)
    probe.command("other")(lambda: None)  # two commands: each is called by its name
    result = CliRunner().invoke(
        probe,
        ["serve-it", "--name", "y", "--ssl-certfile", "c"],
        env={"TETHER_ICE_HOSTS": "loopback"},
    )
    assert result.exit_code == 0, result.output
    assert seen == [("y", Serving(ssl_certfile="c", ice_hosts="loopback"))]


def test_the_workers_model_settings_have_flags_and_variables(monkeypatch) -> None:
    import tether.cli.worker as worker_cli
    import tether.worker.app as worker_app

    served: list[object] = []
    monkeypatch.setattr(worker_app, "create_worker_app", lambda settings: settings)
    monkeypatch.setattr(worker_cli, "serve", lambda app, *args, **kw: served.append(app))
    monkeypatch.setattr(worker_cli, "setup_logging", lambda *args: None)
    result = CliRunner().invoke(
        app, ["worker", "--model-memory-mb", "8000"], env={"TETHER_LOAD_TIMEOUT_S": "2.5"}
    )
    assert result.exit_code == 0, result.output
    (settings,) = served
    assert (settings.load_timeout_s, settings.model_memory_mb) == (2.5, 8000)  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, ["worker", "--load-timeout-s", "0"])
    assert result.exit_code != 0 and "load-timeout-s" in result.output
