"""`tether doctor` given what a careless user gives it, against real processes: a URL
with a password in it (never printed), one without a scheme or with a broken IPv6
literal (named, no traceback), a token with a newline around it, a token file that is
not there and no studio to ask (--json still prints one object), a usage error (with
--json, one object too), Ctrl-C during the media test (one object, exit 130), http://
to an https worker, and a TETHER_CA_FILE that does not exist."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Services, wait_for
from tests.integration.test_doctor import doctor
from tests.integration.test_doctor_cases import check, tls_worker  # noqa: F401 (fixture)
from tether.tools.processes import free_port

pytestmark = pytest.mark.timeout(120)


def one_object(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """--json's stdout is exactly one JSON object, and no traceback anywhere."""
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert isinstance(report, dict), proc.stdout
    return report


def test_a_password_in_the_url_is_named_and_never_printed(services: Services) -> None:
    worker = services.worker(token="pw-token-secret")
    with_password = worker.url.replace("http://", "http://bob:hunter2-secret@")
    for url in (with_password, with_password.removeprefix("http://")):
        for json_flag in (("--json",), ()):
            proc = doctor("--worker", url, *json_flag, token="pw-token-secret")
            assert proc.returncode == 2, proc.stdout + proc.stderr
            out = proc.stdout + proc.stderr
            assert "hunter2-secret" not in out and "pw-token-secret" not in out, out
            assert "password" in out and "Traceback" not in out
    report = one_object(doctor("--worker", with_password, "--json", token="pw-token-secret"))
    assert report["failed_check"] == "reach" and report["worker_url"] == worker.url


def test_a_url_without_scheme_gets_the_url_to_type(services: Services) -> None:
    worker = services.worker(token="bare-secret")
    bare = worker.url.removeprefix("http://")
    report = one_object(doctor("--worker", bare, "--json", token="bare-secret"))
    assert report["exit_code"] == 2 and report["failed_check"] == "reach"
    assert f"http://{bare}" in check(report, "reach")["fix"]


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://127.0.0.1:99999", "http://:80", "http://a..b:80",
            f"http://{'a' * 70}.test:80"],
)  # fmt: skip
def test_a_url_that_does_not_parse_is_named_without_a_traceback(url: str) -> None:
    proc = doctor("--worker", url, "--json", token="x-secret")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    report = one_object(proc)
    reach = check(report, "reach")
    assert report["failed_check"] == "reach" and "stopped with an error" not in reach["detail"]
    assert "URL" in reach["detail"] or "not a valid host name" in reach["detail"], reach


def test_a_token_with_a_newline_around_it_still_works(services: Services) -> None:
    worker = services.worker(token="nl-secret")
    proc = doctor("--worker", worker.url, "--json", "--seconds", "1", token=" nl-secret\n")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert check(one_object(proc), "signaling")["status"] == "ok"
    blank = doctor("--worker", worker.url, "--json", token=" \n")
    assert blank.returncode == 2 and "empty" in one_object(blank)["verdict"]


def test_json_is_one_object_when_no_run_can_start(tmp_path: Path) -> None:
    worker = f"http://127.0.0.1:{free_port()}"
    missing = doctor("--worker", worker, "--json", "--token-file", str(tmp_path / "nope"))
    nobody = doctor("--json", token="s-secret", TETHER_STUDIO_URL=f"http://127.0.0.1:{free_port()}")
    for proc, words in ((missing, "token file"), (nobody, "no running studio")):
        assert proc.returncode == 2, proc.stdout + proc.stderr
        report = one_object(proc)
        assert report["ok"] is False and report["exit_code"] == 2 and report["checks"] == []
        assert words in report["verdict"] and words in proc.stderr


def test_ctrl_c_during_the_media_test_prints_one_object_and_exits_130(
    services: Services,
) -> None:
    worker = services.worker(token="int-secret")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env |= {"TETHER_ICE_HOSTS": "loopback", "TETHER_WORKER_TOKEN": "int-secret"}
    args = ["doctor", "--worker", worker.url, "--json", "--seconds", "30"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def in_session() -> bool:  # the test session is up: ICE done, media running
            return httpx.get(f"{worker.url}/health", timeout=2).json()["sessions"] >= 1

        wait_for(in_session, 30, "the doctor's test session")
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert time.monotonic() - sent < 10  # it stops at once, not after the 30 s test
    report = one_object(subprocess.CompletedProcess(args, 130, stdout, stderr))
    assert report["status"] == "interrupted" and report["ok"] is False
    assert report["verdict"].startswith("INTERRUPTED")
    assert [c["name"] for c in report["checks"]][:3] == ["reach", "tls", "signaling"]
    assert "int-secret" not in stdout + stderr


def test_http_to_an_https_worker_says_use_https(tls_worker) -> None:  # noqa: F811
    worker, ca_file = tls_worker
    plain = worker.url.replace("https://", "http://")
    report = one_object(doctor("--worker", plain, "--json", token="tls-doc"))
    assert report["failed_check"] == "signaling"
    assert worker.url in check(report, "signaling")["fix"]
    missing_ca = doctor("--worker", worker.url, "--json", token="tls-doc",
                        TETHER_CA_FILE=str(ca_file) + ".missing")  # fmt: skip
    report = one_object(missing_ca)
    assert report["failed_check"] == "tls" and "TETHER_CA_FILE" in check(report, "tls")["fix"]
    assert "tls-doc" not in missing_ca.stdout + missing_ca.stderr


def test_a_short_token_masks_values_but_leaves_the_json_intact(services: Services) -> None:
    worker = services.worker(token="e")  # "e" is in nearly every key and word
    proc = doctor("--worker", worker.url, "--json", "--seconds", "1", token="e")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    report = one_object(proc)
    assert {"ok", "status", "exit_code", "verdict", "checks"} <= set(report), report.keys()
    assert report["status"] in ("ok", "warn")
    assert all(set(c) >= {"name", "status", "detail", "fix"} for c in report["checks"])


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("--json", "--seconds", "100"), {}, "--seconds"),
        (("--json", "--no-such-flag"), {}, "--no-such-flag"),
        (("--seconds", "x"), {"TETHER_DOCTOR_JSON": "1"}, "--seconds"),
    ],
)
def test_a_usage_error_with_json_is_one_object(args, env, named) -> None:
    proc = doctor(*args, **env)
    report = one_object(proc)
    assert proc.returncode == 2 and report["exit_code"] == 2 and report["status"] == "fail"
    assert report["verdict"].startswith("FAIL: usage:") and named in report["verdict"]
    assert report["checks"] == [] and "Usage:" not in proc.stdout


def test_a_usage_error_without_json_is_the_usage_text() -> None:
    proc = doctor("--seconds", "100")
    assert proc.returncode == 2 and proc.stdout == "" and "--seconds" in proc.stderr
