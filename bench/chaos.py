"""Chaos: the link's model-based test (tests/link_model.py) for minutes on end.

    python -m bench.chaos [--minutes 30] [--steps 12] [--seed N]

Random sequences of parameter posts, stream stops and starts, concurrent offers,
connect/disconnect/reconnect, debug drops and a frozen worker (SIGSTOP/SIGCONT),
against a real studio and worker on loopback; after each step, once things settle,
the invariants are checked. Prints one JSON line: sequences and steps run, and the
violations found (the target is 0), each with the failing sequence's message."""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.stateful import run_state_machine_as_test
from tests.helpers import Services
from tests.link_model import Rig, machine_for

from tether.rtc.adapter import MediaAdapter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--steps", type=int, default=12, help="steps per random sequence")
    parser.add_argument("--seed", type=int, default=None)
    opts = parser.parse_args()
    MediaAdapter.stock(ice_hosts="loopback").install()
    rng = random.Random(opts.seed)
    violations: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Path(tmp))
        rig = Rig(services)
        machine = machine_for(rig)
        start = time.monotonic()
        try:
            # Runs of several sequences: a run's first sequence is always a trivial one,
            # so one sequence per run would test little. A violation ends a run.
            while time.monotonic() < start + opts.minutes * 60:
                seed(rng.getrandbits(64))(machine)  # reproducible from --seed
                try:
                    run_state_machine_as_test(
                        machine,
                        settings=settings(
                            max_examples=10,
                            stateful_step_count=opts.steps,
                            deadline=None,
                            database=None,
                            phases=[Phase.generate],
                            suppress_health_check=list(HealthCheck),
                        ),
                    )
                except Exception as exc:  # a violated invariant: count it, go on
                    violations.append(f"{type(exc).__name__}: {str(exc)[:300]}")
        finally:
            rig.close()
            services.close()
        elapsed = time.monotonic() - start
    print(
        json.dumps(
            {
                "bench": "chaos",
                "minutes": round(elapsed / 60, 2),
                "sequences": machine.sequences,
                "checked_steps": machine.checks,
                "violations": len(violations),
                "messages": violations[:10],
            }
        )
    )


if __name__ == "__main__":
    main()
