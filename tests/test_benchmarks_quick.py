"""Each benchmark under bench/ runs in its --quick mode and writes its result where the
release report reads it (support/benchmarks.py). Quick sizes prove that it runs, not that
the thresholds are met: a threshold missed exits 1, a benchmark that breaks exits otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.benchmarks import FAILING, NOT_RUN, PASSING, bench_results, requirement_statuses

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = ["harness_vs_bare", "handshake_latency", "fanout_cpu"]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_each_benchmark_runs_quickly_and_writes_its_result(name, tmp_path):
    completed = subprocess.run([sys.executable, "-m", f"bench.{name}", "--quick"], cwd=REPO,
                               env={**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)},
                               capture_output=True, text=True, timeout=120)
    output = completed.stdout + completed.stderr
    assert completed.returncode in (0, 1), output
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["benchmark"] == name and result["quick"] is True and result["checks"], result
    assert result["passed"] == (completed.returncode == 0), output
    assert "ratio" in output or "per backend CPU-second" in output, output
    entry = bench_results(tmp_path)[name]
    assert entry["status"] == (PASSING if result["passed"] else FAILING) and entry["requirements"]


def test_a_benchmark_without_a_result_is_not_run_and_a_requirement_fails_with_any_failing_one(tmp_path):
    (tmp_path / "handshake_latency.json").write_text(json.dumps({"passed": False, "checks": [], "measured": {}}))
    (tmp_path / "fanout_cpu.json").write_text(json.dumps({"passed": True, "checks": [], "measured": {}}))
    (tmp_path / "harness_vs_bare.json").write_text("{not json")
    results = bench_results(tmp_path)
    assert results["handshake_latency"]["status"] == FAILING
    assert results["fanout_cpu"]["status"] == PASSING
    assert results["harness_vs_bare"]["status"] == NOT_RUN and "could not be read" in results["harness_vs_bare"]["error"]
    assert results["locust"]["status"] == NOT_RUN
    statuses = requirement_statuses(results)
    assert statuses["PERF-02"] == FAILING and statuses["PERF-01"] == PASSING and statuses["ISO-04"] == NOT_RUN
