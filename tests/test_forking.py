"""Reference backends forked by the run's zygote (support/forking.py, backend/zygote.py) behave,
for the launcher, like the ``python -m backend`` processes they replace: they serve, report how
they ended, stop when asked, and never outlive the process that started them."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from support.forking import alive
from support.launcher import REPO_ROOT, EmbeddedServices, LaunchError


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """An embedded PostgreSQL and Redis for the instances these tests start."""
    services = EmbeddedServices(workdir=tmp_path_factory.mktemp("stores"))
    try:
        yield {"DATABASE_URL": services.start_postgres(), "REDIS_URL": services.start_redis(),
               "JWT_SECRET": "z" * 40, "BACKEND_MODE": "development"}
    finally:
        services.stop()


def test_a_forked_instance_serves_and_a_stopped_one_ends_with_code_0(tmp_path, stores):
    services = EmbeddedServices(workdir=tmp_path)
    try:
        first, second = services.start_backends({"one": stores, "two": stores})
        assert first.process.pid != second.process.pid
        assert os.getpgid(first.process.pid) == first.process.pid, "an instance leads its own process group"
        services.stop_backend(first)
        assert first.process.returncode == 0, first.log_tail()
        assert second.process.poll() is None, "stopping one instance stopped another"
    finally:
        services.stop()
    assert second.process.returncode == 0, second.log_tail()
    assert services._forker.process.returncode == 0, "the zygote did not end when the run stopped"


def test_an_instance_that_refuses_to_start_reports_its_code_and_says_why_in_its_log(tmp_path):
    services = EmbeddedServices(workdir=tmp_path)
    try:
        backend = services._launch("no-settings", {"DATABASE_URL": "", "REDIS_URL": "", "JWT_SECRET": ""})
        assert backend.process.wait(30) == 2
        assert "error:" in backend.log_tail(), backend.log_tail()
        with pytest.raises(LaunchError, match="'no-settings' exited with code 2 while starting"):
            services._wait_healthy(backend, time.monotonic() + 5)
    finally:
        services.stop()


def test_an_instance_killed_by_a_signal_reports_it_as_subprocess_would(tmp_path, stores):
    services = EmbeddedServices(workdir=tmp_path)
    try:
        backend = services.start_backends({"killed": stores})[0]
        os.killpg(backend.process.pid, signal.SIGKILL)
        assert backend.process.wait(10) == -signal.SIGKILL
    finally:
        services.stop()


def test_instances_and_the_zygote_stop_when_the_process_that_started_them_is_killed(tmp_path, stores):
    """SIGKILL leaves no atexit or finally to run: the kernel's parent-death signal does the stopping."""
    script = textwrap.dedent(f"""
        import json, sys, time
        from pathlib import Path
        from support.launcher import EmbeddedServices
        services = EmbeddedServices(workdir=Path({str(tmp_path)!r}))
        backends = services.start_backends({{"orphan-1": json.loads(sys.argv[1]), "orphan-2": json.loads(sys.argv[1])}})
        print(json.dumps([services._forker.process.pid] + [b.process.pid for b in backends]), flush=True)
        time.sleep(120)
    """)
    starter = subprocess.Popen([sys.executable, "-c", script, json.dumps(stores)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        pids = json.loads(starter.stdout.readline())
        assert all(alive(pid) for pid in pids)
        starter.kill()
        starter.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in pids if alive(pid)]
        assert not left, f"still running after the process that started them was killed: {left}"
    finally:
        if starter.poll() is None:
            starter.kill()


def _zygote_on(control_fd: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "backend.zygote", "--control-fd", str(control_fd)], cwd=REPO_ROOT,
                            pass_fds=(control_fd,), start_new_session=True)


def _request(control: socket.socket, env: dict, fds: list[int]) -> dict:
    socket.send_fds(control, [json.dumps({"argv": [], "env": env}).encode()], fds)
    while True:
        message = control.recv(1 << 16)
        assert message, "the zygote closed its end (it ended) instead of answering"
        reply = json.loads(message)
        if "exited" not in reply:
            return reply


def test_a_request_the_zygote_cannot_serve_is_answered_and_the_next_is_served(tmp_path, stores):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    zygote = _zygote_on(theirs.fileno())
    theirs.close()
    listening = socket.create_server(("127.0.0.1", 0))
    try:
        with open(tmp_path / "instance.log", "wb") as log:
            refused = _request(ours, stores, [log.fileno()])  # the listening socket is missing
            assert "expected 2 descriptors" in refused.get("error", ""), refused
            served = _request(ours, stores, [listening.fileno(), log.fileno()])
        assert "forked" in served, served
        assert alive(served["forked"])
    finally:
        ours.close()  # the zygote stops what it started, then ends
        assert zygote.wait(15) == 0
        listening.close()
    assert not alive(served["forked"]), "the zygote ended and left its instance running"


def test_when_the_zygote_dies_its_instances_end_and_the_launcher_still_stops(tmp_path, stores):
    services = EmbeddedServices(workdir=tmp_path)
    try:
        backend = services.start_backends({"bereaved": stores})[0]
        services._forker.process.kill()
        assert backend.process.wait(10) == -signal.SIGTERM  # the kernel's parent-death signal
        with pytest.raises(LaunchError, match="'late' did not start: the process that forks the backends cannot"):
            services._launch("late", stores)
    finally:
        started = time.monotonic()
        services.stop()
        assert time.monotonic() - started < 10
    assert not alive(backend.process.pid)
