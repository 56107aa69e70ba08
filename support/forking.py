"""Reference backends started as forks of one that has imported everything (backend/zygote.py).

A dozen instances start at once in a run in workers, on a machine whose two cores are busy
starting PostgreSQL, Redis and the workers too; each would spend about a quarter of a
CPU-second importing the same modules. The launcher starts one ``python -m backend.zygote``
per run instead and asks it for each instance. What comes back behaves, for the launcher and
the tests, like the ``subprocess.Popen`` of ``python -m backend``: a pid that leads its own
process group, ``poll``, ``wait`` and ``returncode``.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

MAX_MESSAGE = 1 << 16


class ZygoteGone(RuntimeError):
    """The forking process ended; the message says how, with the end of its log."""


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
        self._gone = False

    def fork(self, argv: list[str], env: dict[str, str], listening: socket.socket, log_fd: int) -> ForkedProcess:
        """Start ``python -m backend`` with ``argv`` (``--fd`` is added), ``env`` and that socket and log."""
        request = json.dumps({"argv": argv, "env": env}).encode()
        with self._lock:
            try:
                socket.send_fds(self._control, [request], [listening.fileno(), log_fd])
                while True:
                    reply = self._receive(timeout=30)
                    if reply is None:
                        raise ZygoteGone("it did not answer within 30 s")
                    if "forked" in reply:
                        break
            except (OSError, ZygoteGone) as error:
                self._gone = True
                raise ZygoteGone(f"the backend zygote could not start an instance ({error}); "
                                 f"its log ends:\n{self.log_tail()}") from None
            forked = ForkedProcess(self, reply["forked"], ["python", "-m", "backend", *argv])
            self._running[forked.pid] = forked
            return forked

    def collect(self, timeout: float) -> None:
        """Take in every exit the zygote reported, waiting up to ``timeout`` for the first."""
        with self._lock:
            try:
                reply = self._receive(timeout)
                while reply is not None:
                    reply = self._receive(0)
            except (OSError, ZygoteGone):
                self._gone = True
            if self._gone:
                self._settle_orphans()

    def _receive(self, timeout: float) -> dict | None:
        """One message (an exit is recorded as it is read); None when nothing came in time."""
        if self._gone:
            raise ZygoteGone("it has ended")
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
        """With the zygote gone, nobody reports exits: an instance no longer alive has ended."""
        for pid, forked in list(self._running.items()):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                forked.returncode = -1  # its code went with the zygote
                del self._running[pid]

    def stop(self, grace: float = 5.0) -> None:
        """Close our end (the zygote then ends) and wait for it; SIGKILL if it does not."""
        with self._lock:
            self._control.close()
            self._gone = True
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
