"""Browser tests: Debian's Chromium driven by Playwright, against a real studio and
worker. A failing test leaves a screenshot in test-results/. Every status the page
receives (its event stream, and the status the API answers it with) is checked against
the published schema, web/cloud-status.schema.json."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from playwright.sync_api import Browser, Page, sync_playwright

from tests.skips import require_tool

CHROMIUM = os.environ.get("TETHER_CHROMIUM", "/usr/bin/chromium")
RESULTS = Path(__file__).resolve().parents[2] / "test-results"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    # keep it off the network: no background fetches, updates, sync or QUIC
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


STATUS_SCHEMA = json.loads((files("tether") / "web" / "cloud-status.schema.json").read_text())

# Reports each status the page gets: the one app.js publishes as window.tetherStatus
# (from the event stream), and each same-origin reply of an endpoint that answers one.
RECORD_STATUSES = """(() => {
  const seen = (s) => { window.__tetherStatusSeen(s).catch(() => {}); };
  let current;
  Object.defineProperty(window, "tetherStatus", {
    configurable: true, get: () => current, set: (s) => { current = s; seen(s); },
  });
  const paths = ["/api/v1/cloud/status", "/api/v1/cloud/connect", "/api/v1/cloud/disconnect",
                 "/api/v1/cloud/reconnect", "/api/v1/webrtc/stop"];
  const answersStatus = (path) =>
    paths.includes(path) || path.startsWith("/api/v1/cloud/debug/disconnect-");
  const original = window.fetch;
  window.fetch = async (...args) => {
    const res = await original(...args);
    const url = new URL(res.url || String(args[0]), location.href);
    if (res.ok && url.origin === location.origin && answersStatus(url.pathname)) {
      res.clone().json().then(seen, () => {});
    }
    return res;
  };
})();"""


def check_statuses(statuses: list[Any]) -> None:
    """Each status against the schema; the first that fails says where."""
    validator = Draft202012Validator(STATUS_SCHEMA)
    for status in statuses:
        error = next(iter(validator.iter_errors(status)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "status"
            raise AssertionError(f"a status the page got breaks the schema at {where}: "
                                 f"{error.message}\n{json.dumps(status)[:2000]}")  # fmt: skip


# Module scope: Playwright's sync API keeps an event loop running while it is open,
# which must be over before any asyncio test runs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_tool(CHROMIUM, "chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    statuses: list[Any] = []
    context.expose_function("__tetherStatusSeen", lambda status: statuses.append(status))
    context.add_init_script(RECORD_STATUSES)
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=str(RESULTS / f"{request.node.name}.png"), full_page=True)
        print("browser console:\n" + "\n".join(messages[-50:]))
    context.close()
    print(f"{len(statuses)} statuses the page got, checked against the schema")
    check_statuses(statuses)


def doc_screenshot(page: Page, name: str) -> None:
    """Screenshots of the page in each link state, for the docs."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
