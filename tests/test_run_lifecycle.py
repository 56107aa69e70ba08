"""A run of the specification on the embedded default passes and leaves nothing running:
after success, after Ctrl-C in the middle of a scenario, and after SIGTERM."""

from __future__ import annotations

import os
import signal
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
