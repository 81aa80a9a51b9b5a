"""The doctor's judgement: media numbers graded against the link's quality thresholds,
the verdict and exit code of a report, and skipped checks that never count."""

from __future__ import annotations

from dataclasses import replace

from tether.doctor.judge import MediaNumbers, judge_media
from tether.doctor.pipeline_check import PipelineSeen, check_listed, check_pipeline
from tether.doctor.report import Check, Report, Status

CLEAN = MediaNumbers(
    seconds=6.0, fps_sent=30.0, fps_distinct=29.5, width=320, height=240,
    rtt_p50_ms=2.0, rtt_p95_ms=5.0, round_trip_p50_ms=20.0, round_trip_p95_ms=40.0,
    loss_down=0.0, loss_up=0.0, down_kbps=900.0, up_kbps=800.0,
)  # fmt: skip


def test_a_clean_path_is_ok_with_its_numbers() -> None:
    check = judge_media(CLEAN)
    assert check.status is Status.OK and check.fix is None
    assert check.numbers["fps_distinct"] == 29.5 and check.numbers["resolution"] == "320x240"


def test_five_percent_loss_is_a_warning_not_a_failure() -> None:
    check = judge_media(replace(CLEAN, loss_up=0.05))
    assert check.status is Status.WARN
    assert check.numbers["limited_by"] == "loss" and "loss" in check.detail and check.fix


def test_heavy_loss_fails() -> None:
    check = judge_media(replace(CLEAN, loss_down=0.3))
    assert check.status is Status.FAIL and check.numbers["limited_by"] == "loss"


def test_a_narrow_path_names_bandwidth_not_its_symptoms() -> None:
    narrow = replace(CLEAN, down_kbps=150.0, loss_up=0.3, fps_distinct=8.0, rtt_p50_ms=400.0)
    check = judge_media(narrow)
    assert check.status is Status.WARN
    assert check.numbers["limited_by"] == "bandwidth" and "bandwidth" in check.detail
    assert "uplink" in (check.fix or "")


def test_no_frames_back_fails() -> None:
    check = judge_media(replace(CLEAN, fps_distinct=0.0))
    assert check.status is Status.FAIL and "no processed frames" in check.detail


def test_the_report_is_as_bad_as_its_worst_check_and_skips_do_not_count() -> None:
    report = Report("http://w:1")
    report.checks = [Check.ok("reach", "fine"), Check.skipped("tls", "plain http")]
    assert report.status is Status.OK and report.exit_code == 0
    report.checks.append(Check.warn("media", "slow", "faster"))
    assert report.exit_code == 1 and report.verdict().startswith("WARN: media: slow")
    report.checks.append(Check.fail("pipeline", "broken", "mend it"))
    summary = report.as_dict()
    assert summary["ok"] is False and summary["exit_code"] == 2
    assert summary["failed_check"] == "pipeline"
    assert [c["name"] for c in summary["checks"]] == ["reach", "tls", "media", "pipeline"]


def test_the_pipeline_check_says_cold_loading_and_missing() -> None:
    catalog = [{"name": "passthrough"}, {"name": "slow"}]
    missing = check_listed(catalog, "nope")
    assert missing is not None and missing.status is Status.FAIL and "slow" in (missing.fix or "")
    loading = PipelineSeen(loading_seen=True, load_s=12.0, state="loading")
    assert check_pipeline(catalog, "slow", loading).status is Status.WARN
    loaded = PipelineSeen(loading_seen=True, load_s=3.0, state="ready", worker_ms=10.0)
    check = check_pipeline(catalog, "slow", loaded)
    assert check.status is Status.OK and "was cold, loaded in 3.0 s" in check.detail
    paced = PipelineSeen(state="ready", worker_ms=150.0, fps_sent=30.0)
    assert check_pipeline(catalog, "slow", paced).status is Status.WARN
