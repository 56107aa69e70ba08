"""The specification in workers (support/parallel.py) reads as the run in one process: the same
totals and coverage, a worker's failure fails the run with its message, and an interrupted run
leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, run_spec
from processes import service_processes

SELECTION = ("features/discovery", "features/accounts")
WORKER_SIGN = "support.parallel:WorkerRunner"


def totals(output: str) -> list[str]:
    """behave's summary lines: features, scenarios and steps passed, failed, skipped, undefined."""
    return [line for line in output.splitlines()
            if re.match(r"^\d+ (features|scenarios|steps) passed, ", line)]


def coverage_summary(output: str) -> list[str]:
    """The requirement and isolation coverage lines of the run's end."""
    return [line for line in output.splitlines()
            if line.startswith("[spec]   ") or line.startswith("[spec] requirement coverage")
            or line.startswith("[spec] isolation coverage")]


def outcomes(report: list[dict]) -> dict[str, str]:
    """Scenario -> its status, from behave's JSON report."""
    return {f"{feature['location'].split(':')[0]} {element['name']}": element["status"]
            for feature in report for element in feature.get("elements", []) if element.get("type") != "background"}


def allure_results(directory: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in directory.glob("*-result.json")]


def workers_alive() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().rsplit(") ", 1)[1][0]
            except (OSError, IndexError):
                continue
            if WORKER_SIGN in cmdline and state != "Z":
                found[int(entry.name)] = cmdline
    return found


def wait_until_gone(before: dict[int, str], timeout: float = 15) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        stray = {pid: cmd for pid, cmd in {**service_processes(), **workers_alive()}.items() if pid not in before}
        if not stray or time.monotonic() > deadline:
            return stray
        time.sleep(0.1)


EMBEDDED = {"TARGET_URL": "", "DATABASE_URL": "", "REDIS_URL": "", "JWT_SECRET": "", "SPEC_JOBS": ""}


def test_a_run_in_workers_has_the_totals_and_coverage_of_a_run_in_one_process(tmp_path):
    before = {**service_processes(), **workers_alive()}
    sequential = run_spec("-D", "jobs=1", *SELECTION, env=EMBEDDED, tmp_path=tmp_path)
    parallel = run_spec("-D", "jobs=2", *SELECTION, env=EMBEDDED, tmp_path=tmp_path)
    assert sequential.returncode == 0, sequential.output
    assert parallel.returncode == 0, parallel.output
    assert "2 workers, each with an embedded deployment of its own" in parallel.output
    assert "workers" not in sequential.output.split("requirement coverage")[0]
    assert totals(parallel.output) == totals(sequential.output) and len(totals(parallel.output)) == 3
    assert coverage_summary(parallel.output) == coverage_summary(sequential.output)
    assert "frames checked against docs/asyncapi.yaml" in parallel.output
    assert outcomes(parallel.report) == outcomes(sequential.report) and outcomes(parallel.report)
    # Allure: each scenario's result once, the environment and isolation coverage written once.
    results = allure_results(parallel.allure_dir)
    assert sorted(r["fullName"] for r in results) == sorted(r["fullName"] for r in allure_results(sequential.allure_dir))
    assert len({r["fullName"] for r in results}) == len(results)
    environment = (parallel.allure_dir / "environment.properties").read_text()
    assert "Requirements=" in environment and "Workers=2" in environment
    assert (parallel.allure_dir / "isolation-coverage.json").is_file()
    assert wait_until_gone(before) == {}


def test_a_failure_in_one_worker_fails_the_run_with_its_message(tmp_path):
    before = {**service_processes(), **workers_alive()}
    planted = REPO / "tests" / f".planted-features-{secrets.token_hex(3)}"
    planted.mkdir()
    try:
        (planted / "planted_failure.feature").write_text(
            "@area.LIFE\nFeature: A planted failure\n\n"
            "  @req.LIFE-01\n  Scenario: A first sign-up is said to be refused\n"
            "    When Alice signs up on the Free plan\n"
            "    Then the sign-up is refused because the address is taken\n")
        run = run_spec("-D", "jobs=2", "features/discovery/published_configuration.feature",
                       str(planted.relative_to(REPO)), env=EMBEDDED, tmp_path=tmp_path)
    finally:
        shutil.rmtree(planted)
    assert run.returncode != 0, run.output
    assert "2 scenarios passed" not in run.output
    assert re.search(r"^1 scenario passed, 1 failed", run.output, re.M) or \
        re.search(r"^\d+ scenarios? passed, 1 failed", run.output, re.M), run.output
    assert "A first sign-up is said to be refused" in run.output
    # The failing check's own words, under its step, as in a run in one process.
    assert re.search(r"refused because the address is taken \.\.\. failed in .*\nASSERT FAILED: this step needs an "
                     r"HTTP request whose answer is checked", run.output), run.output
    assert re.search(r"^\[spec\]   failing\s+LIFE-01: A first sign-up is said to be refused", run.output, re.M), run.output
    assert wait_until_gone(before) == {}


def _interrupt(tmp_path, send) -> tuple[int, str, dict]:
    before = {**service_processes(), **workers_alive()}
    process = subprocess.Popen(
        [sys.executable, "-m", "behave", "-f", "plain", "-D", "jobs=3", "-D", f"allure_results={tmp_path / 'allure'}"],
        cwd=REPO, env={**os.environ, **EMBEDDED}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    seen = []
    for line in process.stdout:  # the workers run scenarios
        seen.append(line)
        if line.strip().startswith("Scenario"):
            break
    assert workers_alive(), "".join(seen)
    send(process)
    try:
        rest, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("the interrupted run did not stop within 60 s:\n" + "".join(seen))
    return process.returncode, "".join(seen) + rest, wait_until_gone(before)


def test_ctrl_c_stops_every_worker_and_everything_they_started(tmp_path):
    code, output, stray = _interrupt(tmp_path, lambda p: os.killpg(p.pid, signal.SIGINT))
    assert code != 0, output
    assert "ABORTED" in output, output
    assert output.count("embedded services stopped") == 3, output
    assert stray == {}, f"processes left behind after Ctrl-C: {stray}"


def test_sigterm_stops_every_worker_and_everything_they_started(tmp_path):
    code, output, stray = _interrupt(tmp_path, lambda p: p.send_signal(signal.SIGTERM))
    assert code != 0, output
    assert output.count("embedded services stopped") == 3, output
    assert stray == {}, f"processes left behind after SIGTERM: {stray}"
