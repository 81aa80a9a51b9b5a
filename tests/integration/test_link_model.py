"""The link's promise, model-based: random sequences of parameter posts, stream
stops and starts, concurrent offers, connect/disconnect/reconnect, debug drops and a
frozen worker, against real processes; the invariants are checked after each step
once things settle (tests/link_model.py). CI runs a few examples; bench/chaos.py
runs it for minutes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.helpers import Services
from tests.link_model import Rig, machine_for

pytestmark = pytest.mark.timeout(300)


def test_link_promise_holds_under_random_sequences(services: Services) -> None:
    rig = Rig(services)
    try:
        run_state_machine_as_test(
            machine_for(rig),
            settings=settings(
                max_examples=4,  # the first is always a trivial one
                stateful_step_count=8,
                deadline=None,
                database=None,
                phases=[Phase.generate],  # a failure's steps are printed; no slow shrinking
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        rig.close()
