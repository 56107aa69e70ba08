"""python -m backend.zygote --control-fd N: start instances by forking one that has imported everything.

Most of what an instance costs to start is importing uvicorn, Starlette, asyncpg, redis-py
and this package: about a quarter of a CPU-second. A test run that starts a dozen instances
at once on a small machine pays that a dozen times while everything else starts too. This
process pays it once; each instance is then a fork of it that runs ``python -m backend``'s
own ``main``, in a session of its own, with its own environment, arguments, log and
listening socket.

The control descriptor is one end of an AF_UNIX SOCK_SEQPACKET pair; each message is JSON.
The caller sends ``{"argv": [...], "env": {...}}`` with two descriptors attached, the
listening socket and the log file, and gets ``{"forked": pid}`` back (or ``{"error": why}``);
the instance runs with ``argv`` and ``--fd`` naming its socket. Whenever an instance ends,
this process reports ``{"exited": pid, "code": c}`` with the code ``subprocess`` would give
(negative: killed by that signal). When the caller closes its end, the instances still
running are stopped (SIGTERM, then SIGKILL after a grace period) and this process ends; if
it dies instead, the kernel sends each instance SIGTERM.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import signal
import socket
import sys
import time
import traceback

from . import __main__ as backend_main

PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 1 << 20
REAP_SECONDS = 0.05
# How long instances get to stop by themselves once the caller has gone.
STOP_GRACE_SECONDS = 5.0


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
        if not message:  # the caller is done or gone
            _stop(children)
            return 0
        try:
            reply = {"forked": _start(message, fds, control)}
            children.add(reply["forked"])
        except Exception as error:  # one bad request must not take the running instances down with it
            reply = {"error": f"{type(error).__name__}: {error}"}
        finally:
            for fd in fds:
                os.close(fd)  # the instance holds its own copies; the next one must not inherit these
        try:
            control.send(json.dumps(reply).encode())
        except OSError:
            _stop(children)
            return 0


def _start(message: bytes, fds: list[int], control: socket.socket) -> int:
    request = json.loads(message)
    if len(fds) != 2:
        raise ValueError(f"expected 2 descriptors (listening socket, log), got {len(fds)}")
    return _fork([str(arg) for arg in request["argv"]], dict(request["env"]), fds, control)


def _report_exits(control: socket.socket, children: set[int]) -> None:
    for pid, code in _reap(children):
        try:
            control.send(json.dumps({"exited": pid, "code": code}).encode())
        except OSError:
            return  # the caller is gone; the next read says so


def _reap(children: set[int]) -> list[tuple[int, int]]:
    ended = []
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        children.discard(pid)
        ended.append((pid, os.waitstatus_to_exitcode(status)))
    return ended


def _stop(children: set[int]) -> None:
    """SIGTERM every instance still running, SIGKILL those that outlast the grace period, reap all."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in children:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:  # not yet in a session of its own
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while children and time.monotonic() < deadline:
            _reap(children)
            time.sleep(REAP_SECONDS)
        if not children:
            return


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
        code = backend_main.main([*argv, "--fd", str(listening)])
    except SystemExit as exit_:  # what sys.exit would have made of it
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
