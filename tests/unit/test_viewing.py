"""What a viewer sees, computed from synthetic histories of arrivals."""

from __future__ import annotations

import pytest

from tether.tools.viewing import Arrival, report

FULL = (512, 512)


def stream(fps: float, seconds: float, start: float = 0.0, first_id: int = 0, rtt: float = 0.1):
    """Arrivals of a clean stream, and when each frame was sent."""
    arrivals, sent = [], {}
    for k in range(int(fps * seconds)):
        frame_id = first_id + k
        sent[frame_id] = start + k / fps
        arrivals.append(Arrival(sent[frame_id] + rtt, frame_id, *FULL))
    return arrivals, sent


def test_a_clean_stream() -> None:
    arrivals, sent = stream(30, 20)
    out = report(arrivals, sent, FULL, 0.1, 20.1)
    assert [w["t"] for w in out["windows"]] == [0, 5, 10, 15]
    for window in out["windows"]:
        assert window["distinct_fps"] == pytest.approx(30, abs=0.3)
        assert window["full_size"] == 1.0 and window["freezes"] == 0
        assert window["rtt_p50_ms"] == pytest.approx(100, abs=1)
    summary = out["summary"]
    assert summary["sizes"] == {"512x512": 600} and summary["late"]["after_s"] == 10


def test_repeats_count_as_frames_not_as_pictures() -> None:
    # Each picture arrives three times: 30 frames a second, 10 pictures.
    arrivals = [Arrival(k / 30, k // 3, *FULL) for k in range(300)]
    sent = {i: i / 10 - 0.05 for i in range(100)}
    summary = report(arrivals, sent, FULL, 0, 10)["summary"]
    assert summary["fps"] == pytest.approx(30, abs=0.2)
    assert summary["distinct_fps"] == pytest.approx(10, abs=0.2)
    # The round trip is the first arrival's: repeats do not stretch it.
    assert summary["rtt_p50_ms"] == pytest.approx(50, abs=1)
    # A picture held 0.1 s is no freeze.
    assert summary["freezes"] == 0


def test_resolution_share_and_sizes() -> None:
    arrivals, sent = stream(30, 10)
    small = [Arrival(a.at, a.frame_id, 256, 256) if a.at < 5 else a for a in arrivals]
    out = report(small, sent, FULL, 0, 10, late_after_s=5)
    first, second = out["windows"]
    assert first["full_size"] == 0.0 and first["sizes"] == {"256x256": 147}, first
    assert second["full_size"] == 1.0
    assert out["summary"]["full_size"] == pytest.approx(0.5, abs=0.02)
    assert out["summary"]["late"]["full_size"] == 1.0


def test_a_freeze_counts_once_in_the_window_where_it_ends() -> None:
    before, sent = stream(30, 4)
    after, sent_after = stream(30, 4, start=11, first_id=1000)
    arrivals = before + after  # nothing new from 4.1 s to 11.1 s
    out = report(arrivals, {**sent, **sent_after}, FULL, 0, 15)
    freezes = [w["freezes"] for w in out["windows"]]
    assert freezes == [0, 0, 1]
    assert out["windows"][1]["distinct_fps"] == 0 and out["windows"][1]["full_size"] is None
    assert out["windows"][1]["longest_gap_ms"] == pytest.approx(5933, abs=2)  # still open
    assert out["windows"][2]["longest_gap_ms"] == pytest.approx(7000, abs=40)
    assert out["summary"]["freezes"] == 1


def test_a_freeze_still_open_at_the_end_counts_in_the_summary() -> None:
    arrivals, sent = stream(30, 3)
    out = report(arrivals, sent, FULL, 0, 10)
    assert out["summary"]["freezes"] == 1
    assert out["summary"]["longest_gap_ms"] == pytest.approx(6933, abs=2)


def test_a_picture_seen_before_the_span_is_no_new_picture_in_it() -> None:
    arrivals, sent = stream(30, 2)
    replay = [Arrival(5 + a.at, a.frame_id, *FULL) for a in arrivals]  # the same pictures
    summary = report(arrivals + replay, sent, FULL, 5, 7.5)["summary"]
    assert summary["fps"] > 20 and summary["distinct_fps"] == 0
