"""The link's promise, model-based: random sequences of parameter posts, stream
stops and starts, concurrent offers, connect/disconnect/reconnect, debug drops and a
frozen worker, against real processes; the invariants are checked after each step
once things settle (tests/link_model.py). CI runs a few examples; bench/chaos.py
runs it for minutes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.helpers import Services
from tests.link_model import Rig, machine_for

pytestmark = pytest.mark.timeout(300)


def test_link_promise_holds_under_random_sequences(services: Services) -> None:
    rig = Rig(services)
    machine = seed(20261129)(machine_for(rig))  # the same sequences on every CI run
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=4,  # the first is always a trivial one
                stateful_step_count=8,
                deadline=None,
                database=None,
                phases=[Phase.generate],  # a failure's steps are printed; no slow shrinking
                suppress_health_check=list(HealthCheck),
            ),
        )
        # it tested something: streams ran, and each step was checked
        assert machine.streams_started >= 2 and machine.checks >= 4 * 8, (
            machine.streams_started,
            machine.checks,
        )
    finally:
        rig.close()
