"""`tether pipelines`: what a worker offers, from its API or from this installation."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from tether.cli.console import fail
from tether.cli.log_setup import setup_logging


def pipelines(
    worker: Annotated[
        str | None, typer.Option("--worker", envvar="TETHER_WORKER_URL", metavar="URL")
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="TETHER_WORKER_TOKEN", metavar="T")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List the pipelines (built-in and plugins) and their parameters."""
    setup_logging("warning", "tether")
    try:
        catalog = fetch_catalog(worker, token) if worker else local_catalog()
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(catalog, indent=2))
    else:
        Console().print(render_catalog(catalog))


def local_catalog() -> list[dict[str, Any]]:
    """The pipelines an embedded worker would load: built-ins plus installed plugins."""
    from tether.pipelines import describe, load_pipelines

    return [describe(p) for p in load_pipelines().values()]


def fetch_catalog(worker_url: str, token: str | None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{worker_url.rstrip('/')}/api/v1/pipelines"
    try:
        reply = httpx.get(url, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"cannot reach the worker at {worker_url}: {exc}") from None
    if reply.status_code == 401:
        raise RuntimeError(f"the worker at {worker_url} refused the token")
    if reply.status_code != 200:
        raise RuntimeError(f"{url} answered HTTP {reply.status_code}: not a Tether worker?")
    return list(reply.json()["pipelines"])


def describe_parameter(name: str, schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    bits = [f"{name} ({kind}"]
    if "default" in schema:
        bits.append(f", default {schema['default']!r}")
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        bits.append(f", {'' if low is None else low}..{'' if high is None else high}")
    if "multipleOf" in schema:
        bits.append(f", step {schema['multipleOf']}")
    if "maxLength" in schema:
        bits.append(f", at most {schema['maxLength']} characters")
    bits.append(")")
    text = "".join(bits)
    return f"{text}: {schema['description']}" if schema.get("description") else text


def render_catalog(catalog: list[dict[str, Any]]) -> Table:
    table = Table(title="Pipelines", show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("what it does")
    table.add_column("parameters (set with --param KEY=VALUE or on the page)")
    for entry in catalog:
        props = (entry.get("parameters") or {}).get("properties") or {}
        params = "\n".join(describe_parameter(k, v) for k, v in props.items()) or "-"
        table.add_row(entry["name"], entry.get("description", ""), params)
    return table
