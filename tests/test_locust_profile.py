"""The Locust profile (bench/locustfile.py) in Locust's distributed mode: one master and two
workers, headless, on loopback, a few people for a few seconds.

Against the reference backend it passes, with answers from both workers and its result
written; against the planted server's `leak` defect (tests/planted/server.py: every agent
event also goes to every other socket) the leak is seen on a worker and the run exits
non-zero, saying so.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench.load import reference_backend

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = "bench/locustfile.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_distributed(host: str, tmp_path: Path, users: int = 6, seconds: int = 6) -> tuple[int, str, dict | None]:
    """One master and two workers against ``host``; the master's exit code, all output, the result."""
    port = _free_port()
    env = {**os.environ, "LEAK_MARKER_KEY": secrets.token_hex(32), "BENCH_RESULTS_DIR": str(tmp_path)}
    locust = [sys.executable, "-m", "locust", "-f", LOCUSTFILE]
    master = [*locust, "--headless", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
              "--expect-workers", "2", "--expect-workers-max-wait", "30", "-u", str(users), "-r", str(users),
              "-t", f"{seconds}s", "--stop-timeout", "5", "--host", host, "--only-summary",
              "--answer-timeout", "5", "--ask-interval", "1"]
    worker = [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    logs = [tmp_path / name for name in ("master.log", "worker-1.log", "worker-2.log")]
    processes = []
    try:
        for command, log in zip((master, worker, worker), logs):
            with open(log, "w") as output:
                processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
                                                  start_new_session=True))
        code = processes[0].wait(timeout=seconds + 60)
        for process in processes[1:]:
            process.wait(timeout=15)  # a worker stops when its master quits
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    output = "\n".join(f"--- {log.name}\n{log.read_text()}" for log in logs)
    result_path = tmp_path / "locust.json"
    return code, output, json.loads(result_path.read_text()) if result_path.exists() else None


def test_the_profile_passes_against_the_reference_backend_on_two_workers(tmp_path):
    with reference_backend() as backend:
        code, output, result = run_distributed(backend.url, tmp_path)
    assert code == 0, output
    measured = result["measured"] if result else {}
    assert result and result["passed"] and measured["answers"] > 0 and measured["leaks"] == 0, output
    assert measured["workers"] == 2 and measured["frames_checked"] >= measured["answers"] * 5, measured


@pytest.mark.planted(requirement="PERF-01", defect="leak")
def test_a_leak_seen_on_a_worker_fails_the_run(planted_server, tmp_path):
    server = planted_server("leak")
    code, output, result = run_distributed(server.url, tmp_path)
    assert code != 0, output
    assert result and not result["passed"] and result["measured"]["leaks"] > 0, output
    assert "leaks seen on any worker" in output and "FAIL" in output, output
    assert "isolation broken:" in output and "private data (marker pd-" in output, output
    # A person of the other worker: the owner is read from the marker itself, not a registry.
    assert re.search(r"received user [0-9a-f-]{36}\\?'s session [0-9a-f-]{36}\\?'s private data", output), output
