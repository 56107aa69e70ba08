"""Reference backends started as forks of one that has imported everything (backend/zygote.py).

A dozen instances start at once in a run in workers, on a machine whose two cores are busy
starting PostgreSQL, Redis and the workers too; each would spend about a quarter of a
CPU-second importing the same modules. The launcher starts one ``python -m backend.zygote``
per run instead and asks it for each instance. What comes back behaves, for the launcher and
the tests, like the ``subprocess.Popen`` of ``python -m backend``: a pid that leads its own
process group, ``poll``, ``wait`` and ``returncode``.

The zygote gets SIGTERM from the kernel when the thread that started it ends (the orphan
guard's parent-death signal), so it must be started from a thread that lives as long as the
run: the launcher starts it from ``start_backends``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

MAX_MESSAGE = 1 << 16
# How long the zygote may take to answer a request before it is taken for broken.
ANSWER_SECONDS = 30.0


class ZygoteGone(RuntimeError):
    """The process that forks the backends ended or stopped answering; no instance can be started."""


class ForkRefused(RuntimeError):
    """The zygote could not start this instance (it still serves the others)."""


class ForkedProcess:
    """An instance the zygote forked: the part of ``subprocess.Popen`` the launcher uses."""

    def __init__(self, zygote: "Zygote", pid: int, args: list[str]):
        self._zygote = zygote
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._zygote.collect(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._zygote.collect(0.1 if remaining is None else min(remaining, 0.1))
        return self.returncode


class Zygote:
    """The caller's end of one ``python -m backend.zygote``."""

    def __init__(self, command_prefix: list[str], log_path: Path, env: dict[str, str], cwd: Path):
        self.log_path = log_path
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [*command_prefix, "-m", "backend.zygote", "--control-fd", str(theirs.fileno())]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            pass_fds=(theirs.fileno(),), start_new_session=True)
        theirs.close()
        self._control = ours
        self._lock = threading.Lock()
        self._running: dict[int, ForkedProcess] = {}
        self._gone: str | None = None  # why, once it has ended or stopped answering

    def fork(self, argv: list[str], env: dict[str, str], listening: socket.socket, log_fd: int) -> ForkedProcess:
        """Start ``python -m backend`` with ``argv`` (``--fd`` is added), ``env`` and that socket and log."""
        request = json.dumps({"argv": argv, "env": env}).encode()
        with self._lock:
            try:
                socket.send_fds(self._control, [request], [listening.fileno(), log_fd])
                deadline = time.monotonic() + ANSWER_SECONDS
                reply = {}
                while "forked" not in reply and "error" not in reply:
                    if time.monotonic() > deadline:
                        self.process.terminate()  # broken: its instances get SIGTERM from the kernel
                        raise ZygoteGone(f"it did not answer within {ANSWER_SECONDS:g} s and was stopped")
                    reply = self._receive(0.5) or {}
            except (OSError, ZygoteGone) as error:
                self._gone = self._gone or str(error)
                raise ZygoteGone(f"the process that forks the backends cannot start one: {self._gone}; "
                                 f"its log ends:\n{self.log_tail()}") from None
            if "error" in reply:
                raise ForkRefused(f"the process that forks the backends could not start this one: {reply['error']}")
            forked = ForkedProcess(self, reply["forked"], ["python", "-m", "backend", *argv])
            self._running[forked.pid] = forked
            return forked

    def collect(self, timeout: float) -> None:
        """Take in every exit the zygote reported, waiting up to ``timeout`` for the first."""
        with self._lock:
            if self._gone is None:
                try:
                    reply = self._receive(timeout)
                    while reply is not None:
                        reply = self._receive(0)
                    return
                except (OSError, ZygoteGone) as error:
                    self._gone = str(error)
            self._settle_orphans()
        time.sleep(timeout)  # nobody will report: look again no sooner than asked

    def _receive(self, timeout: float) -> dict | None:
        """One message (an exit is recorded as it is read); None when nothing came in time."""
        readable, _, _ = select.select([self._control], [], [], timeout)
        if not readable:
            return None
        message = self._control.recv(MAX_MESSAGE)
        if not message:
            raise ZygoteGone(f"it ended with code {self.process.wait()}")
        reply = json.loads(message)
        if "exited" in reply:
            ended = self._running.pop(reply["exited"], None)
            if ended is not None:
                ended.returncode = reply["code"]
        return reply

    def _settle_orphans(self) -> None:
        """With the zygote gone nobody reports exits: an instance that is no longer alive has ended.

        Its own code went with the zygote; it is given as SIGTERM's, the signal the kernel sent
        it when the zygote died.
        """
        for pid, forked in list(self._running.items()):
            if not alive(pid):
                forked.returncode = -signal.SIGTERM
                del self._running[pid]

    def stop(self, grace: float = 10.0) -> None:
        """Close our end: the zygote stops the instances still running, then ends. SIGKILL if it does not."""
        with self._lock:
            self._control.close()
            self._gone = self._gone or "it was stopped"
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def alive(pid: int) -> bool:
    """Running: a process that has ended but nobody reaped yet (a zombie) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
