"""Which service processes are running: to prove a run leaves none of its own behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Command-line fragments of the processes an embedded run starts.
# A worker of a run in workers (parallel_run.py).
WORKER_SIGN = "parallel_run:WorkerRunner"
SERVICE_SIGNS = ("postgres", "redis-server", "-m backend", "tests.planted.server", "tests.planted.defective_backend",
                 "tests.planted.lifecycle_defects", WORKER_SIGN)


def service_processes() -> dict[int, str]:
    """pid -> command line of every live (non-zombie) service-like process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            state = (entry / "stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if state != "Z" and any(sign in cmdline for sign in SERVICE_SIGNS) and int(entry.name) != os.getpid():
            found[int(entry.name)] = cmdline
    return found


def wait_until_gone(before: dict[int, str], timeout: float = 10) -> dict[int, str]:
    """Processes started since ``before`` that are still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        stray = {pid: cmd for pid, cmd in service_processes().items() if pid not in before}
        if not stray or time.monotonic() > deadline:
            return stray
        time.sleep(0.1)


def interrupt_once_running(behave_args: list[str], env: dict[str, str], cwd: Path,
                           send: Callable[[subprocess.Popen], None], *, gone_within: float = 10,
                           running: Callable[[], bool] = lambda: True) -> tuple[int, str, dict[int, str]]:
    """Start ``behave``, ``send`` it a signal once a scenario runs (after ``running()`` holds), and
    return its exit code, its output and the processes it left behind."""
    before = service_processes()
    # Its own process group, as a terminal gives a foreground job: Ctrl-C reaches the group.
    process = subprocess.Popen([sys.executable, "-m", "behave", *behave_args], cwd=cwd, env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    for line in process.stdout:  # wait until scenarios are running against the started backends
        seen.append(line)
        if line.strip().startswith("Scenario"):
            break
    assert running(), "".join(seen)
    send(process)
    try:
        rest, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("the interrupted run did not stop within 60 s:\n" + "".join(seen))
    return process.returncode, "".join(seen) + rest, wait_until_gone(before, gone_within)
