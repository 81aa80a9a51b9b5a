"""The page's "Test connection": it runs the doctor's checks against the studio's
worker, shows progress while they run, and the result in words with numbers; a wrong
token shows as the token, and the token itself never reaches the page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import doc_screenshot
from tests.helpers import Services

pytestmark = pytest.mark.timeout(120)


def test_test_connection_shows_progress_then_each_check_with_numbers(
    page: Page, services: Services
) -> None:
    worker = services.worker(token="page-doctor-secret")
    studio = services.studio(worker)
    page.goto(studio.url)
    expect(page.locator("#badge")).to_have_text(re.compile("connected"), timeout=15_000)
    page.get_by_role("button", name="Test connection").click()
    verdict = page.locator("#doctor-verdict")
    expect(verdict).to_have_text(re.compile(r"Testing the connection"), timeout=5_000)
    expect(page.get_by_role("button", name="Test connection")).to_be_disabled()
    expect(verdict).to_have_attribute("data-status", "ok", timeout=40_000)
    expect(verdict).to_have_text(re.compile(r"^OK: the path to .* works: .* fps back"))
    checks = page.locator("#doctor-checks li")
    expect(checks).to_have_count(6)
    media = page.locator('#doctor-checks li[data-check="media"]')
    expect(media).to_have_attribute("data-status", "ok")
    expect(media).to_contain_text(re.compile(r"RTT p50 \d+ / p95 \d+ ms"))
    expect(media).to_contain_text(re.compile(r"bandwidth \d+ up / \d+ down kbit/s"))
    ice = page.locator('#doctor-checks li[data-check="ice"]')
    expect(ice).to_contain_text("host pair")
    expect(page.get_by_role("button", name="Test connection")).to_be_enabled()
    assert "page-doctor-secret" not in page.content()
    doc_screenshot(page, "test-connection")


def test_a_wrong_token_is_shown_as_the_token_with_its_fix(page: Page, services: Services) -> None:
    worker = services.worker(token="the-workers-secret")
    studio = services.studio(worker, token="not-the-workers-secret")
    page.goto(studio.url)
    page.get_by_role("button", name="Test connection").click()
    verdict = page.locator("#doctor-verdict")
    expect(verdict).to_have_attribute("data-status", "fail", timeout=30_000)
    expect(verdict).to_contain_text("signaling: the worker rejected the token")
    signaling = page.locator('#doctor-checks li[data-check="signaling"]')
    expect(signaling).to_contain_text("Fix:")
    expect(page.locator('#doctor-checks li[data-check="media"]')).to_have_attribute(
        "data-status", "skipped"
    )
    html = page.content()
    assert "the-workers-secret" not in html and "not-the-workers-secret" not in html


def test_with_no_worker_set_the_page_says_so_and_stays_usable(
    page: Page, services: Services
) -> None:
    studio = services.studio()
    page.goto(studio.url)
    button = page.get_by_role("button", name="Test connection")
    button.click()
    verdict = page.locator("#doctor-verdict")
    expect(verdict).to_have_text(re.compile(r"Could not start the test: no worker to test"))
    expect(verdict).to_have_attribute("data-status", "fail")
    expect(button).to_be_enabled()
    expect(page.locator("#doctor-checks li")).to_have_count(0)
