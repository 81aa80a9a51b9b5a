"""Options that several commands share, each with its flag, environment variable and help
written once; and the serving options that `tether worker` and `tether studio` both end with."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

LogLevel = Annotated[
    str, typer.Option("--log-level", envvar="TETHER_LOG_LEVEL", help="debug, info, warning, error")
]
SslCertfile = Annotated[
    str | None, typer.Option("--ssl-certfile", envvar="TETHER_SSL_CERTFILE", help="serve TLS")
]
SslKeyfile = Annotated[str | None, typer.Option("--ssl-keyfile", envvar="TETHER_SSL_KEYFILE")]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        envvar="TETHER_WORKER_TOKEN_FILE",
        help="read the worker token from this file (safer than --token: ps shows arguments)",
    ),
]
IceHosts = Annotated[
    str,
    typer.Option(
        "--ice-hosts", envvar="TETHER_ICE_HOSTS", help="ICE host candidates: auto, loopback or all"
    ),
]


@dataclass(frozen=True)
class Serving:
    """What a serving command takes after its own options: TLS, ICE hosts, log level."""

    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ice_hosts: str = "auto"
    log_level: str = "info"


_SERVING_TYPES = {
    "ssl_certfile": SslCertfile,
    "ssl_keyfile": SslKeyfile,
    "ice_hosts": IceHosts,
    "log_level": LogLevel,
}


def with_serving_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the serving options after its own (so help lists them last) and
    pass them to it as one ``serving`` argument."""
    own = inspect.signature(command, eval_str=True).parameters.values()
    keyword = inspect.Parameter.KEYWORD_ONLY
    shared = [
        inspect.Parameter(f.name, keyword, default=f.default, annotation=_SERVING_TYPES[f.name])
        for f in fields(Serving)
    ]
    params = [p for p in own if p.name != "serving"] + shared

    @functools.wraps(command)
    def with_options(**values: Any) -> None:
        serving = Serving(**{p.name: values.pop(p.name) for p in shared})
        command(**values, serving=serving)

    # Typer reads the options from the signature and its annotations.
    with_options.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    with_options.__annotations__ = {p.name: p.annotation for p in params}
    return with_options
