"""Cross-origin attacks on the studio, from a real browser: a page on a second origin
tries no-cors POSTs and a connect to its own fake worker; a rebinding page (its name
re-pointed at the studio) tries same-origin calls. Nothing changes, and no token
reaches the fake worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_page import frames_advance, start_streaming
from tests.helpers import Service, Services, wait_for
from tests.skips import require_tool
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(180)

REBIND = "rebind.test"

ATTACK_JS = """async ({studio, fake}) => {
  const out = {};
  const post = (path, init) =>
    fetch(studio + path, {method: 'POST', mode: 'no-cors', ...init})
      .then(r => r.type).catch(e => 'error: ' + e);
  for (const path of ['/api/v1/cloud/disconnect', '/api/v1/webrtc/stop',
                      '/api/v1/cloud/reconnect'])
    out[path] = await post(path);
  const text = {'Content-Type': 'text/plain'};
  out.params = await post('/api/v1/parameters',
                          {headers: text, body: JSON.stringify({pipeline: 'invert'})});
  out.connect = await post('/api/v1/cloud/connect',
                           {headers: text, body: JSON.stringify({worker_url: fake})});
  out.beacon = navigator.sendBeacon(studio + '/api/v1/cloud/disconnect');
  // A CORS request with a JSON body needs a preflight the studio never grants.
  out.cors = await fetch(studio + '/api/v1/cloud/connect', {method: 'POST',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify({worker_url: fake})})
    .then(r => r.status).catch(() => 'blocked');
  out.read = await fetch(studio + '/api/v1/cloud/status').then(r => r.text())
    .catch(() => 'blocked');
  return out;
}"""

REBOUND_JS = """async ({fake}) => {
  const json = {'Content-Type': 'application/json'};
  const call = (method, path, body) => fetch(path, {method, headers: json, body})
    .then(r => r.status).catch(e => 'error: ' + e);
  return {
    status: await call('GET', '/api/v1/cloud/status'),
    parameters: await call('GET', '/api/v1/parameters'),
    connect: await call('POST', '/api/v1/cloud/connect', JSON.stringify({worker_url: fake})),
    set: await call('POST', '/api/v1/parameters', JSON.stringify({pipeline: 'invert'})),
    stop: await call('POST', '/api/v1/webrtc/stop'),
  };
}"""


class _Recorder(BaseHTTPRequestHandler):
    """The attacker's servers: one serves the attack page, one plays a worker and keeps
    every request's headers."""

    seen: list[dict[str, str]]

    def _any(self) -> None:
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b"<!doctype html><title>attacker</title><p>hello</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_OPTIONS = _any

    def log_message(self, *args: object) -> None:
        pass


def _serve() -> tuple[ThreadingHTTPServer, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_tool(CHROMIUM, "chromium")
    args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield browser
        browser.close()


def _state(url: str) -> tuple:
    status = httpx.get(f"{url}/api/v1/cloud/status").json()
    params = httpx.get(f"{url}/api/v1/parameters").json()
    keys = ("state", "worker_url", "connection_id", "stream_id", "streaming", "params_version")
    return tuple(status[k] for k in keys), params


def test_other_origins_change_nothing_and_get_no_token(
    page: Page, browser: Browser, services: Services
) -> None:
    worker = services.worker(token="token-for-the-real-worker")
    studio = services.studio(worker)
    start_streaming(page, studio, "gray")
    before = _state(studio.url)
    assert before[0][0] == "connected" and before[0][4] is True

    attacker, _ = _serve()
    fake, knocks = _serve()
    fake_url = f"http://127.0.0.1:{fake.server_port}"
    context = browser.new_context()
    try:
        evil = context.new_page()
        evil.goto(f"http://127.0.0.1:{attacker.server_port}/")
        results = evil.evaluate(ATTACK_JS, {"studio": studio.url, "fake": fake_url})
        assert results["cors"] == "blocked" and results["read"] == "blocked", results

        # DNS rebinding: the attacker's page, its name now pointing at the studio.
        # (Its first load came from the attacker; every later request reaches the studio.)
        rebound = context.new_page()
        response = rebound.goto(f"http://{REBIND}:{studio.port}/")
        assert response is not None and response.status == 403
        codes = rebound.evaluate(REBOUND_JS, {"fake": fake_url})
        assert set(codes.values()) == {403}, codes
    finally:
        context.close()
        attacker.shutdown()

    # The beacon goes out on its own time: once it is refused too, every attack is in.
    wait_for(lambda: _refused(studio, "/api/v1/cloud/disconnect") >= 2, 10, "the beacon refused")
    assert _state(studio.url) == before
    frames_advance(page)  # the user's stream still plays
    fake.shutdown()
    assert knocks == [], knocks
    assert "token-for-the-real-worker" not in json.dumps(knocks)
    # every attack reached the studio and was refused there
    for path in ("/api/v1/cloud/disconnect", "/api/v1/webrtc/stop", "/api/v1/cloud/connect"):
        assert _refused(studio, path), path


def _refused(studio: Service, path: str) -> int:
    """How many POSTs to ``path`` the studio's log shows refused (403)."""
    log = " ".join(studio.output().split())  # the log wraps long lines
    return log.count(f'"POST {path} HTTP/1.1" 403')
