"""The status's published JSON Schema: the committed file is the model's schema (it
cannot drift), the API serves the same, and every status field the page reads is in it."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

from fastapi.testclient import TestClient

from tether.config import StudioSettings
from tether.studio.app import create_studio_app
from tether.studio.cloud_status import status_schema

WEB = files("tether") / "web"
SCHEMA_FILE = WEB / "cloud-status.schema.json"
REGENERATE = "python -m tether.studio.cloud_status > src/tether/web/cloud-status.schema.json"


def test_the_committed_schema_is_the_models() -> None:
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == status_schema(), f"the schema file is stale: {REGENERATE}"


def test_the_api_and_the_page_serve_the_schema() -> None:
    app = create_studio_app(StudioSettings())
    with TestClient(app, base_url="http://127.0.0.1") as http:
        served = http.get("/api/v1/cloud/status/schema")
        assert served.status_code == 200
        assert served.headers["cache-control"] == "no-store"
        assert served.json() == status_schema()
        beside_the_page = http.get("/cloud-status.schema.json")
        assert beside_the_page.status_code == 200
        assert beside_the_page.json() == status_schema()
        # Same guard as the rest of the API: a foreign host name is refused.
        assert (
            http.get("/api/v1/cloud/status/schema", headers={"Host": "evil.lan"}).status_code == 403
        )


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a node may be ($ref followed, nullable and unions opened)."""
    if "$ref" in node:
        return _resolve(schema, schema["$defs"][node["$ref"].rsplit("/", 1)[1]])
    if "anyOf" in node:
        return [o for option in node["anyOf"] for o in _resolve(schema, option)]
    if node.get("type") == "array":
        return _resolve(schema, node["items"])
    return [node] if node.get("type") == "object" else []


def _fields(schema: dict[str, Any], *path: str) -> set[str]:
    nodes = [schema]
    for name in path:
        nodes = [n for node in nodes for n in _resolve(schema, node["properties"][name])]
    return {field for node in nodes for field in node["properties"]}


def _read(pattern: str, source: str) -> set[str]:
    code = re.sub(r"(?m)(^|\s)//.*$", r"\1", source)  # comments name files, not fields
    return set(re.findall(pattern, code))


def test_every_status_field_the_page_reads_is_in_the_schema() -> None:
    schema = status_schema()
    status_js = (WEB / "status.js").read_text()
    app_js = (WEB / "app.js").read_text()
    # status.js names the status `s`, its stats `st`, its quality `q`, an event `e`;
    # app.js names it `status` or `lastStatus` (not the module ./status.js).
    reads = {
        (): _read(r"\bs\.(\w+)", status_js)
        | _read(r"(?<![/\w])(?:status|lastStatus)\??\.(\w+)", app_js)
        | _read(r"api\.status\(\)[^;]*?\)\)\.(\w+)", app_js),
        ("stats",): _read(r"\bst\.(\w+)", status_js) | _read(r"\.stats\?\.(\w+)", app_js),
        ("quality",): _read(r"\bq\.(\w+)", status_js),
        ("events",): _read(r"\be\.(\w+)", status_js),
    }
    # Not vacuous: the patterns find what the page is known to read.
    assert {"state", "fallback_active", "previous_stream_reason", "stream_id"} <= reads[()]
    assert {"fps_in", "frames_received", "heartbeat_rtt_ms"} <= reads[("stats",)]
    assert {"level", "factor"} == reads[("quality",)]
    assert {"at", "kind", "to", "reason"} == reads[("events",)]
    for path, names in reads.items():
        missing = names - _fields(schema, *path)
        assert not missing, f"the page reads {path or 'status'} fields the schema lacks: {missing}"
