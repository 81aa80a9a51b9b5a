"""`tether pipelines`: what a worker offers, from its API or from this installation."""

from __future__ import annotations

from typing import Any

import httpx
from rich.table import Table

from tether.pipelines import describe, load_pipelines


def local_catalog() -> list[dict[str, Any]]:
    """The pipelines an embedded worker would load: built-ins plus installed plugins."""
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
