"""Shared fixtures: real worker and studio processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Services


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
