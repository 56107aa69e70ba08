"""python -m backend.zygote --control-fd N: start instances by forking one that has imported everything.

Most of what an instance costs to start is importing uvicorn, Starlette, asyncpg, redis-py
and this package: about a quarter of a CPU-second. A test run that starts a dozen instances
at once on a small machine pays that a dozen times while everything else starts too. This
process pays it once; each instance is then a fork of it that runs ``python -m backend``'s
own ``main``, in a session of its own, with its own environment, arguments, log and
listening socket.

The control descriptor is one end of an AF_UNIX SOCK_SEQPACKET pair; each message is JSON.
The caller sends ``{"argv": [...], "env": {...}}`` with two descriptors attached, the
listening socket and the log file, and gets ``{"forked": pid}`` back; the instance runs
with ``argv`` and ``--fd`` naming its socket.
Whenever an instance ends, this process reports ``{"exited": pid, "code": c}`` with the code
``subprocess`` would give (negative: killed by that signal). It ends when the caller closes
its end, and the kernel sends SIGTERM to every instance it forked when it dies.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import select
import signal
import socket
import sys
import traceback

from . import __main__ as backend_main

PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 1 << 20
REAP_SECONDS = 0.05


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.zygote", description=__doc__.splitlines()[0])
    parser.add_argument("--control-fd", type=int, required=True,
                        help="one end of an AF_UNIX SOCK_SEQPACKET socket pair, inherited from the caller")
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.control_fd)
    children: set[int] = set()
    while True:
        readable, _, _ = select.select([control], [], [], REAP_SECONDS)
        _report_exits(control, children)
        if not readable:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 2)
        except OSError:
            message, fds = b"", []
        if not message:  # the caller is gone or done: instances still running keep running
            return 0
        try:
            request = json.loads(message)
            pid = _fork(request["argv"], request["env"], fds, control)
        finally:
            for fd in fds:
                os.close(fd)  # the instance holds its own copies; the next one must not inherit these
        children.add(pid)
        control.send(json.dumps({"forked": pid}).encode())


def _report_exits(control: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        control.send(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def _fork(argv: list[str], env: dict[str, str], fds: list[int], control: socket.socket) -> int:
    """Fork one instance; in the child, never return."""
    listening, log = fds
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        control.close()
        os.setsid()  # its own process group: the caller stops it with killpg, as a started process
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.environ.clear()
        os.environ.update(env)
        random.seed()  # each instance draws its own sequence, not a copy of this process's
        code = backend_main.main([*argv, "--fd", str(listening)])
    except SystemExit as exit_:  # what sys.exit would have made of it
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
