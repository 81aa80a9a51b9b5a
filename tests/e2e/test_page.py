"""The studio page in a real browser: streaming, the link's states, recovery, errors."""

from __future__ import annotations

import os
import re
import signal

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import doc_screenshot
from tests.helpers import Service, Services, wait_for

pytestmark = pytest.mark.timeout(180)

# Reads the output (or input) video's pixels through a canvas.
SAMPLE_JS = """(id) => {
  const video = document.getElementById(id);
  if (!video || video.readyState < 2 || !video.videoWidth) return null;
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(video, 0, 0, 64, 64);
  const d = ctx.getImageData(0, 0, 64, 64).data;
  let r = 0, g = 0, b = 0, spread = 0;
  for (let i = 0; i < d.length; i += 4) {
    r += d[i]; g += d[i + 1]; b += d[i + 2];
    spread += Math.abs(d[i] - d[i + 1]) + Math.abs(d[i + 1] - d[i + 2]);
  }
  const n = d.length / 4;
  return {r: r / n, g: g / n, b: b / n, chroma: spread / n, time: video.currentTime,
          frames: video.getVideoPlaybackQuality().totalVideoFrames};
}"""


def sample(page: Page, video: str = "output") -> dict | None:
    return page.evaluate(SAMPLE_JS, video)


def frames_advance(page: Page, deadline_s: float = 15) -> dict:
    first = wait_for(lambda: sample(page), deadline_s, "output video")
    return wait_for(
        lambda: (s := sample(page)) and s["frames"] > first["frames"] + 10 and s,
        deadline_s,
        "output video playing",
    )


def start_streaming(page: Page, studio: Service, pipeline: str = "gray") -> None:
    page.goto(studio.url)
    expect(page.locator("#badge")).to_have_text("connected", timeout=15_000)
    expect(page.locator("#pipeline option")).not_to_have_count(0, timeout=10_000)
    page.select_option("#pipeline", pipeline)
    page.click("#start")
    frames_advance(page)


def worker_session(worker: Service) -> dict:
    sessions = httpx.get(
        f"{worker.url}/api/v1/sessions", headers={"Authorization": f"Bearer {worker.token}"}
    ).json()["sessions"]
    active = [s for s in sessions if s["state"] == "active"]
    assert len(active) == 1, sessions
    return active[0]


def record_banner(page: Page) -> None:
    """Keep every text the banner shows, however briefly, and when the badge changed."""
    page.evaluate(
        """() => {
      window.bannerLog = [];
      window.badgeLog = [];
      const banner = document.getElementById('banner');
      const badge = document.getElementById('badge');
      new MutationObserver(() => {
        if (!banner.hidden) window.bannerLog.push(banner.textContent.trim());
      }).observe(banner, {subtree: true, childList: true, attributes: true, characterData: true});
      new MutationObserver(() => window.badgeLog.push([badge.textContent, Date.now() / 1000]))
        .observe(badge, {subtree: true, childList: true, characterData: true});
    }"""
    )


@pytest.fixture
def rig(services: Services):
    worker = services.worker()
    studio = services.studio(
        worker, TETHER_DEBUG_ENDPOINTS="1", TETHER_RECONNECT_DELAYS="0,0.5,0.5"
    )
    return services, worker, studio


def test_streaming_shows_processed_video(page: Page, rig) -> None:
    _, worker, studio = rig
    start_streaming(page, studio, "gray")
    out = wait_for(lambda: (s := sample(page)) and s["chroma"] < 6 and s, 10, "gray output")
    assert out["r"] + out["g"] + out["b"] > 60  # not black
    assert sample(page, "input")["chroma"] > 30  # the input is colourful
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("#overlay")).to_be_hidden()
    assert worker_session(worker)["pipeline"] == "gray"
    # The quality chip: its level, and what was measured (loopback: nothing lost).
    chip = page.locator("#quality")
    expect(chip).to_be_visible()
    expect(chip).to_have_attribute("data-level", re.compile("^(good|fair|poor|bad)$"))
    expect(chip).to_have_attribute("title", re.compile(r"loss: 0\.0 %"), timeout=15_000)
    expect(chip).to_have_attribute("title", re.compile(r"bandwidth: [1-9]\d* kbit/s"))
    expect(page.locator('dd[data-stat="media loss"]')).to_have_text("0.0 %")
    doc_screenshot(page, "connected")


def test_recovers_from_a_webrtc_disconnect(page: Page, rig) -> None:
    _, worker, studio = rig
    start_streaming(page, studio)
    record_banner(page)
    expect(page.locator("#simulate-drop")).to_be_visible()
    page.click("#simulate-drop")
    wait_for(
        lambda: any("Reconnecting" in t for t in page.evaluate("window.bannerLog")),
        5,
        "the reconnecting banner",
    )
    expect(page.locator("#banner")).to_be_hidden(timeout=10_000)
    expect(page.locator("#badge")).to_have_text("connected")
    frames_advance(page)
    assert sample(page)["chroma"] < 6
    timeline = page.locator("#timeline li").all_text_contents()
    assert any(" reconnected: " in t for t in timeline), timeline
    # how soon the badge showed the transition (same machine, same wall clock)
    events = httpx.get(f"{studio.url}/api/v1/cloud/status").json()["events"]
    went_down = next(e["at"] for e in reversed(events) if e["kind"] == "reconnecting")
    shown = next(t for text, t in page.evaluate("window.badgeLog") if text == "reconnecting")
    print(f"badge showed 'reconnecting' {1000 * (shown - went_down):.0f} ms after the transition")
    assert shown - went_down < 1.0
    assert worker_session(worker)["resumes"] == 1


def test_preserves_parameters_across_reconnection(page: Page, rig) -> None:
    _, worker, studio = rig
    start_streaming(page, studio, "tint")
    prompt = page.get_by_label("Prompt")
    prompt.fill("red")
    prompt.press("Enter")
    expect(page.locator("#params-indicator")).to_contain_text("applied", timeout=10_000)
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        expect(page.locator("#badge")).to_have_text("reconnecting", timeout=5_000)
        expect(page.locator("#banner")).to_contain_text("attempt")
        expect(page.locator("#overlay")).to_contain_text("last processed frame")
        prompt.fill("green")
        prompt.press("Enter")
        expect(page.locator("#params-indicator")).to_contain_text("not yet on the worker")
        doc_screenshot(page, "reconnecting")
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    expect(page.locator("#badge")).to_have_text("connected", timeout=15_000)
    expect(page.locator("#params-indicator")).to_contain_text("applied", timeout=10_000)
    session = worker_session(worker)
    assert session["parameters"]["prompt"] == "green"
    assert session["parameters"]["pipeline"] == "tint"
    status = httpx.get(f"{studio.url}/api/v1/cloud/status").json()
    assert session["parameters_version"] == status["params_version"]
    wait_for(lambda: (s := sample(page)) and s["g"] > s["r"] + 15, 10, "green output")


def test_surfaces_the_error_when_reconnection_fails(page: Page, rig) -> None:
    services, worker, studio = rig
    start_streaming(page, studio)
    worker.stop(signal.SIGKILL)
    expect(page.locator("#badge")).to_have_text("failed", timeout=15_000)
    banner = page.locator("#banner")
    expect(banner).to_contain_text("Lost the worker")
    expect(banner).to_contain_text("cannot reach the worker")
    expect(page.locator("#retry")).to_be_visible()
    expect(page.locator("#overlay")).to_be_visible()
    doc_screenshot(page, "failed")
    services.restart(worker)
    page.locator("#retry").focus()
    page.keyboard.press("Enter")  # the essentials work from the keyboard
    expect(page.locator("#badge")).to_have_text("connected", timeout=15_000)
    expect(banner).to_be_hidden()
    frames_advance(page)
    assert sample(page)["chroma"] < 6


def test_status_endpoint_has_the_reconnection_fields(page: Page, rig) -> None:
    _, _, studio = rig
    page.goto(studio.url)
    status = page.evaluate("fetch('/api/v1/cloud/status').then(r => r.json())")
    for field in (
        "state", "webrtc_connected", "webrtc_error", "webrtc_reconnecting", "reconnect_attempt",
        "next_retry_in_s", "last_outage_s", "params_version", "params_acked_version", "error",
    ):  # fmt: skip
        assert field in status, field
    assert "heartbeat_rtt_ms" in status["stats"] and "outages" in status["stats"]


def test_page_stays_correct_after_a_reload_mid_stream(page: Page, rig) -> None:
    _, worker, studio = rig
    start_streaming(page, studio, "invert")
    first_stream = httpx.get(f"{studio.url}/api/v1/cloud/status").json()["stream_id"]
    page.reload()
    expect(page.locator("#badge")).to_have_text("connected", timeout=10_000)
    expect(page.locator("#pipeline")).to_have_value("invert", timeout=10_000)
    page.click("#start")
    frames_advance(page)
    status = httpx.get(f"{studio.url}/api/v1/cloud/status").json()
    assert status["stream_id"] != first_stream
    assert worker_session(worker)["pipeline"] == "invert"


def test_off_state_and_accessible_controls(page: Page, services: Services) -> None:
    studio = services.studio()
    page.goto(studio.url)
    expect(page.locator("#badge")).to_have_text("off")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('button, select, input')]
            .filter(e => !e.hidden && !(e.labels && e.labels.length)
                    && !e.getAttribute('aria-label') && !e.textContent.trim())
            .map(e => e.id || e.outerHTML)"""
    )
    assert unlabelled == []
    assert page.locator("#banner").get_attribute("aria-live") == "assertive"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") in ("SELECT", "BUTTON", "INPUT")
    doc_screenshot(page, "off")
