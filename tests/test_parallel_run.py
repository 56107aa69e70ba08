"""The specification in workers (parallel_run.py) reads as the run in one process: the same
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
from pathlib import Path

from conftest import REPO, run_spec
from processes import WORKER_SIGN, interrupt_once_running, service_processes, wait_until_gone

SELECTION = ("features/discovery", "features/accounts")


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


EMBEDDED = {"TARGET_URL": "", "DATABASE_URL": "", "REDIS_URL": "", "JWT_SECRET": "", "SPEC_JOBS": ""}


def test_a_run_in_workers_has_the_totals_and_coverage_of_a_run_in_one_process(tmp_path):
    before = service_processes()
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
    assert wait_until_gone(before, 15) == {}


def test_a_failure_in_one_worker_fails_the_run_with_its_message(tmp_path):
    before = service_processes()
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
    assert wait_until_gone(before, 15) == {}


def _interrupt(tmp_path, send) -> tuple[int, str, dict]:
    def workers_running() -> bool:
        return any(WORKER_SIGN in command for command in service_processes().values())

    return interrupt_once_running(["-f", "plain", "-D", "jobs=3", "-D", f"allure_results={tmp_path / 'allure'}"],
                                  EMBEDDED, REPO, send, gone_within=15, running=workers_running)


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


def test_a_worker_stopped_while_it_waits_for_a_feature_stops_what_it_started(tmp_path):
    """SIGTERM between features, when the worker waits for the parent to hand out the next one."""
    from parallel_run import RECORD

    before = service_processes()
    command = [sys.executable, "-m", "behave", "--runner", "parallel_run:WorkerRunner",
               "-f", "parallel_run:ScenarioStream", "--no-summary", "-D", "jobs=1", "-D", "allure_results=off",
               "-D", "spec_worker=1", "-D", f"spec_worker_summary={tmp_path / 'worker-1.json'}", "features/discovery"]
    worker = subprocess.Popen(command, cwd=REPO, env={**os.environ, **EMBEDDED}, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    for line in worker.stdout:  # its deployment is up and it asks for its first feature
        seen.append(line)
        if line.startswith(RECORD) and json.loads(line[len(RECORD):])["kind"] == "next":
            break
    worker.send_signal(signal.SIGTERM)
    try:
        rest, _ = worker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        raise AssertionError("the worker did not stop within 60 s:\n" + "".join(seen))
    output = "".join(seen) + rest
    assert worker.returncode != 0, output
    assert "embedded services stopped" in output, output
    # An orderly end, not a traceback: its after_all ran, and it told the parent it was stopped.
    ends = [json.loads(line[len(RECORD):]) for line in output.split("\n") if line.startswith(RECORD + '{"kind": "end"')]
    assert ends and ends[0]["aborted"], output
    assert (tmp_path / "worker-1.json").is_file(), output
    assert wait_until_gone(before, 15) == {}
