"""Shared fixtures (real worker and studio processes on loopback), and the skip policy:
a skip fails the test unless it was asked for (tests/skips.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import skips
from tests.helpers import Services


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tether", "which skips are asked for (any other skip fails)")
    group.addoption("--skip-net", action="store_true", help="skip the network lab (it needs root)")
    group.addoption(
        "--skip-missing",
        action="store_true",
        help="skip tests whose system tools are not installed (Chromium, coturn, dnsmasq...)",
    )


def pytest_configure(config: pytest.Config) -> None:
    options = {option: config.getoption(option) for option, _ in skips.ASK.values()}
    config.stash[skips.ASKED] = skips.asked_for(options)


@pytest.fixture
def services(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Services]:
    svc = Services(tmp_path)
    yield svc
    svc.close()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for service in svc.started:
            print(f"--- {service.name} log ({service.log.name}) ---\n{service.output()[-4000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        failure = skips.unasked(reason, skips.asked_in(item.config))
        if failure is not None:  # a skip is a failure unless it was asked for
            report.outcome = "failed"
            report.longrepr = failure
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _media_adapter_left_as_found() -> Iterator[None]:
    """A test that installs an aiortc adapter (or starts an app in-process) undoes it:
    in-process tests must not depend on their order."""
    from tether.rtc.adapter import active

    before = active()
    yield
    assert active() is before, f"a test left an aiortc adapter installed: {active()}"
