"""Nothing the page shows is false: start, pipeline failures, rejected parameters,
exact slider steps, a tab that was taken over, the connect form, the quality chip
while the link is down."""

from __future__ import annotations

import signal

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import doc_screenshot
from tests.e2e.test_page import frames_advance, start_streaming
from tests.helpers import Services, wait_for
from tests.integration.slow_pipeline import plugin_env
from tests.integration.test_run_exact import failing_plugin_env

pytestmark = pytest.mark.timeout(180)

RECORD_OVERLAY = """() => {
  window.overlayLog = [];
  const overlay = document.getElementById('overlay');
  const note = () => { if (!overlay.hidden) window.overlayLog.push(overlay.textContent); };
  new MutationObserver(note).observe(overlay,
    {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def open_connected(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#badge")).to_have_text("connected", timeout=15_000)
    expect(page.locator("#pipeline option")).not_to_have_count(0, timeout=10_000)


def status(url: str) -> dict:
    return httpx.get(f"{url}/api/v1/cloud/status").json()


def test_start_waits_for_the_first_frame_instead_of_crying_link_down(
    page: Page, services: Services
) -> None:
    studio = services.studio(services.worker())
    open_connected(page, studio.url)
    page.evaluate(RECORD_OVERLAY)
    page.click("#start")
    frames_advance(page)
    expect(page.locator("#overlay")).to_be_hidden(timeout=10_000)
    log = page.evaluate("window.overlayLog")
    assert any("Waiting for the first processed frame" in t for t in log), log
    assert not any("link down" in t for t in log), log


def test_a_failing_pipeline_shows_in_red_and_the_output_says_unprocessed(
    page: Page, services: Services, tmp_path
) -> None:
    worker = services.worker(**failing_plugin_env(tmp_path))
    studio = services.studio(worker)
    open_connected(page, studio.url)
    page.select_option("#pipeline", "explode")
    page.click("#start")
    error = page.locator("#pipeline-error")
    expect(error).to_contain_text("model weights missing", timeout=15_000)
    assert "255, 107, 96" in error.evaluate("e => getComputedStyle(e).color")  # red
    expect(page.locator("#overlay")).to_contain_text("unprocessed")
    assert "model weights missing" in status(studio.url)["pipeline_error"]
    sessions = httpx.get(
        f"{worker.url}/api/v1/sessions", headers={"Authorization": f"Bearer {worker.token}"}
    ).json()["sessions"]
    assert sessions[0]["pipeline_errors"] > 0
    doc_screenshot(page, "pipeline-error")
    page.select_option("#pipeline", "gray")  # frames process fine again: the error clears
    expect(error).to_be_hidden(timeout=10_000)
    expect(page.locator("#overlay")).to_be_hidden(timeout=10_000)
    assert status(studio.url)["pipeline_error"] is None


def test_a_model_that_loads_is_said_in_words_while_the_running_one_goes_on(
    page: Page, services: Services, tmp_path
) -> None:
    worker = services.worker(**plugin_env(tmp_path / "plugin"))
    studio = services.studio(worker, TETHER_FALLBACK="passthrough")
    open_connected(page, studio.url)
    page.click("#start")
    frames_advance(page)
    page.evaluate(RECORD_OVERLAY)
    page.select_option("#pipeline", "slow_load")  # its first frame loads for 3 s
    overlay = page.locator("#overlay")
    expect(overlay).to_contain_text("Loading slow_load: first frame", timeout=5_000)
    expect(page.locator("[data-stat='pipeline']")).to_contain_text("loading slow_load")
    expect(overlay).to_be_hidden(timeout=15_000)  # loaded: processed frames again
    log = page.evaluate("window.overlayLog")
    # Make-before-break: the pipeline that ran keeps running while the model loads.
    assert any("passthrough keeps running meanwhile" in t for t in log), log
    assert not any("link down" in t for t in log), log
    expect(page.locator("#badge")).to_have_text("connected")
    assert [e["to"] for e in status(studio.url)["events"]] == ["connecting", "connected"]


def test_rejected_parameters_are_shown_naming_the_field(page: Page, services: Services) -> None:
    studio = services.studio(services.worker())
    open_connected(page, studio.url)
    page.select_option("#pipeline", "tint")
    page.click("#start")
    frames_advance(page)
    prompt = page.get_by_label("Prompt")
    prompt.fill("x" * 600)
    prompt.press("Enter")
    indicator = page.locator("#params-indicator")
    expect(indicator).to_contain_text("rejected", timeout=10_000)
    expect(indicator).to_contain_text("prompt")
    expect(indicator).to_have_attribute("data-error", "true")
    doc_screenshot(page, "parameters-rejected")


def test_sliders_step_exactly_as_the_schema_says(page: Page, services: Services) -> None:
    studio = services.studio(services.worker())
    open_connected(page, studio.url)
    page.select_option("#pipeline", "edges")
    gain = page.locator("input[name=gain]")
    assert gain.get_attribute("step") == "0.1"
    expect(page.locator("label:has(input[name=gain]) output")).to_have_text("2.0")
    gain.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(page.locator("label:has(input[name=gain]) output")).to_have_text("2.3")
    wait_for(
        lambda: (
            httpx.get(f"{studio.url}/api/v1/parameters").json()["parameters"].get("gain") == 2.3
        ),
        15,
        "gain 2.3 exactly",
    )


def test_a_taken_over_tab_is_told_at_once(browser: Browser, page: Page, services) -> None:
    studio = services.studio(services.worker())
    open_connected(page, studio.url)
    page.click("#start")
    frames_advance(page)
    other = browser.new_context().new_page()
    try:
        open_connected(other, studio.url)
        other.click("#start")
        expect(page.locator("#stream-state")).to_contain_text("taken over", timeout=3_000)
        expect(page.locator("#start")).to_be_enabled()
        frames_advance(other)
    finally:
        other.context.close()


def test_connect_form_never_connected_vs_lost_and_the_token_stays_secret(
    page: Page, services: Services
) -> None:
    worker = services.worker(token="right-token")
    studio = services.studio()
    page.goto(studio.url)
    expect(page.locator("#banner")).to_contain_text("Not connected to a worker")
    expect(page.locator("#pipeline option")).to_have_text(
        ["no worker: pipelines appear once connected"]
    )
    page.fill("#worker-url", worker.url)
    page.fill("#worker-token", "wrong-token")
    page.click("#connect")
    expect(page.locator("#badge")).to_have_text("failed", timeout=15_000)
    expect(page.locator("#banner")).to_contain_text("Could not connect to the worker")
    expect(page.locator("#banner")).not_to_contain_text("Lost")
    expect(page.locator("#worker-token")).to_have_value("")
    page.fill("#worker-token", "right-token")
    page.click("#connect")
    expect(page.locator("#badge")).to_have_text("connected", timeout=15_000)
    expect(page.locator("#pipeline option")).not_to_have_count(1, timeout=10_000)
    assert "right-token" not in page.content()
    assert "right-token" not in httpx.get(f"{studio.url}/api/v1/cloud/status").text
    page.click("#disconnect")
    expect(page.locator("#badge")).to_have_text("off", timeout=10_000)
    expect(page.locator("#banner")).not_to_contain_text("Lost")


def test_the_studio_pipeline_setting_is_the_pages_first_choice(
    page: Page, services: Services
) -> None:
    studio = services.studio(services.worker(), TETHER_PIPELINE="gray")
    open_connected(page, studio.url)
    expect(page.locator("#pipeline")).to_have_value("gray")


RECORD_CHIP = """() => {
  window.chipLog = [];
  const badge = document.getElementById('badge');
  const chip = document.getElementById('quality');
  const note = () => window.chipLog.push(
    [badge.textContent, chip.hidden || getComputedStyle(chip).display === 'none',
     chip.textContent]);
  note();
  for (const target of [badge, chip]) {
    new MutationObserver(note).observe(target,
      {subtree: true, childList: true, attributes: true, characterData: true});
  }
}"""


def test_the_quality_chip_shows_no_level_while_the_link_is_down(
    page: Page, services: Services
) -> None:
    worker = services.worker()
    studio = services.studio(worker, TETHER_RECONNECT_DELAYS="0,0.5,0.5")
    start_streaming(page, studio, "gray")
    chip = page.locator("#quality")
    expect(chip).to_be_visible(timeout=10_000)  # connected: the chip grades the link
    page.evaluate(RECORD_CHIP)
    worker.stop(signal.SIGKILL)
    expect(page.locator("#badge")).to_have_text("reconnecting", timeout=10_000)
    expect(chip).to_be_hidden()
    expect(page.locator("#badge")).to_have_text("failed", timeout=15_000)
    expect(chip).to_be_hidden()
    log = page.evaluate("window.chipLog")
    assert log[0][0] == "connected" and not log[0][1], log[0]  # it was shown: it can fail
    shown_while_down = [entry for entry in log if entry[0] != "connected" and not entry[1]]
    assert {entry[0] for entry in log} >= {"reconnecting", "failed"}, log
    assert shown_while_down == [], shown_while_down
