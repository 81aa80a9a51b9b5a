"""`tether studio`: run the studio; and the studio set-up `tether up` shares."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import typer

from tether.cli.console import console, fail
from tether.cli.log_setup import redact, setup_logging
from tether.cli.media_setup import apply_media_settings
from tether.cli.options import Serving, TokenFile, with_serving_options
from tether.cli.serving import read_token, serve
from tether.config import StudioSettings


@with_serving_options
def studio(
    host: Annotated[str, typer.Option(envvar="TETHER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TETHER_PORT")] = 8000,
    workers: Annotated[
        list[str] | None,
        typer.Option(
            "--worker",
            envvar="TETHER_WORKER_URL",
            help="a worker URL; repeat, or comma-separate, for a fleet; dns+http://NAME:PORT "
            "for every address NAME resolves to",
        ),
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN")] = None,
    token_file: TokenFile = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", envvar="TETHER_ALLOW_HOST", help="also serve this host name"),
    ] = None,
    serving: Serving = Serving(),
) -> None:
    """Run the studio (HTTP API + web UI); connects at start when --worker is given."""
    from tether.studio.app import create_studio_app
    from tether.studio.fleet import parse_worker_specs

    setup_logging(serving.log_level, "studio")
    token = read_token(token, token_file)
    try:
        specs = parse_worker_specs(workers or [])
    except ValueError as exc:
        raise fail(str(exc)) from None
    worker = ",".join(specs) or None
    hosts = [h.strip() for item in allow_host or [] for h in item.split(",") if h.strip()]
    settings = studio_settings(
        host=host,
        port=port,
        worker_url=worker,
        worker_token=token,
        allow_hosts=hosts or None,
        ice_hosts=serving.ice_hosts,
    )
    apply_media_settings(settings)
    studio_token(settings, "https" if serving.ssl_certfile else "http")
    serve(create_studio_app(settings), host, port, serving)


def studio_settings(**overrides: Any) -> StudioSettings:
    """The studio's settings from its environment, with the options that were given."""
    return StudioSettings(**{k: v for k, v in overrides.items() if v is not None})


def studio_token(settings: StudioSettings, scheme: str) -> None:
    """Off loopback the studio needs a token: generate one if none is set, and print the
    link that hands it to the page (as Jupyter does)."""
    from pydantic import SecretStr

    from tether.rtc.ice import is_loopback_host

    if settings.studio_token is None and not is_loopback_host(settings.host):
        settings.studio_token = SecretStr(secrets.token_urlsafe(24))
        console.print(
            f"[bold]studio token required off loopback[/bold]; open "
            f"{scheme}://{settings.host}:{settings.port}/?token="
            f"{settings.studio_token.get_secret_value()} (set TETHER_STUDIO_TOKEN to choose it)"
        )
    if settings.studio_token is not None:
        redact.add(settings.studio_token.get_secret_value())
