from __future__ import annotations

import pytest

from tether.worker.capacity import Capacity, Refused


def test_admits_up_to_the_cap_and_resumes_past_it() -> None:
    cap = Capacity(2)
    cap.admit(0, resuming=False)
    cap.admit(1, resuming=False)
    with pytest.raises(Refused) as refused:
        cap.admit(2, resuming=False)
    assert refused.value.code == "busy" and "2 of 2" in str(refused.value)
    cap.admit(2, resuming=True)  # a resume re-uses its own slot
    assert cap.ready(1) == (True, "ready")
    assert cap.ready(2) == (False, "full")


def test_draining_refuses_everything_even_a_resume() -> None:
    cap = Capacity(3)
    cap.draining = True
    for resuming in (False, True):
        with pytest.raises(Refused) as refused:
            cap.admit(0, resuming=resuming)
        assert refused.value.code == "draining"
    assert cap.ready(0) == (False, "draining")
    assert cap.load(1, ["b", "a"]) == {
        "sessions": 1,
        "max_sessions": 3,
        "draining": True,
        "pipelines": ["a", "b"],
    }


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Capacity(0)
