"""Command line: python -m backend [--host HOST] [--port PORT] | --fd N."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import resource
import signal
import socket
import sys
import warnings
from pathlib import Path
from typing import Any

import uvicorn
from jwt.warnings import InsecureKeyLengthWarning

from .app import create_app
from .config import Config, ConfigError, weak_secret
from .protocol import answering_websockets, with_deadline

log = logging.getLogger("backend")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter number
# A failing accept() is reported at most once per this many seconds.
ACCEPT_FAILURE_REPORT_SECONDS = 10.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="Run the reference chat backend. Settings come from environment variables "
        "(DATABASE_URL, REDIS_URL and JWT_SECRET are required).",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="TCP port to bind (default 8000)")
    parser.add_argument("--fd", type=_fd, help="serve on this already-bound, listening TCP socket inherited "
                        "from the parent, instead of binding --host/--port")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="default info")
    args = parser.parse_args(argv)
    if args.fd is not None and (args.host is not None or args.port is not None):
        parser.error("--fd serves an inherited socket; it cannot be combined with --host or --port")
    return args


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port; expected a number from 0 to 65535")
    return int(text)


def _fd(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file descriptor; expected a non-negative number")
    return int(text)


def inherited_socket(fd: int) -> socket.socket:
    """The listening socket behind `fd`, with its real family.

    uvicorn's own `fd` option wraps the descriptor as AF_UNIX whatever it is, which makes
    asyncio skip TCP_NODELAY on every accepted connection; handing uvicorn a socket
    object that knows it is TCP avoids that.
    """
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise SystemExit(f"error: --fd {fd} is not an open socket ({exc.strerror}); expected a listening TCP socket")
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        raise SystemExit(f"error: --fd {fd} is not a listening stream socket; call listen() on it before passing it")
    return sock


def return_large_allocations_to_the_system() -> None:
    """Have glibc serve every allocation of 1 MiB or more by mmap, and unmap it when freed.

    By default glibc raises that threshold to the largest block freed so far. The 16 MiB
    that each scrypt hash (register, login) borrows then stays in a worker thread's arena
    for good: a few concurrent logins add tens of MB of resident memory that never
    returns. A fixed threshold keeps the resident size a measure of what is in use.
    """
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1024 * 1024)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


class RedactQueryStrings(logging.Filter):
    """Drop query strings from uvicorn's request lines.

    Tokens are never read from URLs, but a client may still put one there; it must not
    reach the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.split("?", 1)[0] + "?[redacted]" if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        return True


class DropSpuriousHandshakeError(logging.Filter):
    """uvicorn's websockets-sansio logs this at ERROR after every denial response, though
    the client got the response (Kludex/uvicorn PR #3138). /ws always accepts or denies,
    so here the line never means anything.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "ASGI callable returned without completing handshake."


class QuietInvalidUtf8(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 text frame with a traceback, as if it were a bug.

    It is the client's mistake, answered as the contract says (close 1007): one line will do.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Invalid UTF-8 sequence received from client.":
            record.msg = "a client sent a text frame that is not valid UTF-8; closed it with 1007"
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def raise_open_file_limit() -> None:
    """Raise the soft limit on open files to the hard limit, and say so in one line.

    Every socket is a descriptor; the common soft limit of 1024 is reached near 1,000
    clients, while the hard limit usually allows many more.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:  # Linux refuses an infinite soft limit; nr_open is the real cap
        try:
            target = int(Path("/proc/sys/fs/nr_open").read_text())
        except (OSError, ValueError):
            target = soft
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("file descriptors: could not raise the soft limit from %d to %d (%s); at most about %d "
                        "sockets at once", soft, target, exc, soft)
            return
        log.info("file descriptors: soft limit raised from %d to %d (the hard limit)", soft, target)
    else:
        log.info("file descriptors: soft limit %d (the hard limit)", soft)


class AcceptFailureReport:
    """The event loop's exception handler, reporting a failing accept() once per interval.

    Out of descriptors (EMFILE), asyncio logs one traceback per pending connection and
    retries every second: millions of lines in minutes under load. One line per interval,
    with the count since the last, says the same; other errors go to the default handler.
    """

    def __init__(self, interval: float = ACCEPT_FAILURE_REPORT_SECONDS):
        self.interval = interval
        self.reported_at: float | None = None
        self.unreported = 0

    def __call__(self, loop: Any, context: dict[str, Any]) -> None:
        if context.get("message") != "socket.accept() out of system resource":
            loop.default_exception_handler(context)
            return
        self.unreported += 1
        now = loop.time()
        if self.reported_at is not None and now - self.reported_at < self.interval:
            return
        exc = context.get("exception")
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        log.error("cannot accept new connections: %s (open-file limit %d); %d failed attempts since the last "
                  "report; they wait in the listen backlog; next report in %g s at the earliest",
                  getattr(exc, "strerror", None) or exc, soft, self.unreported, self.interval)
        self.reported_at, self.unreported = now, 0


class Server(uvicorn.Server):
    """uvicorn's server, with the accept() failures reported once per interval."""

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().set_exception_handler(AcceptFailureReport())
        await super().serve(sockets)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(RedactQueryStrings())
    logging.getLogger("uvicorn.error").addFilter(DropSpuriousHandshakeError())
    logging.getLogger("uvicorn.error").addFilter(QuietInvalidUtf8())
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    weakness = weak_secret(config.jwt_secret)
    if weakness is not None and config.mode == "production":
        print(f"error: {weakness}; a production instance does not start with it: set JWT_SECRET to 32 or "
              "more random bytes, e.g. $(openssl rand -hex 32)", file=sys.stderr)
        return 2
    if weakness is not None:
        log.warning("%s; accepted in development mode only", weakness)
    if config.password_hash_cost < 14 and config.mode == "production":
        print(f"error: PASSWORD_HASH_COST={config.password_hash_cost} is below 14 (scrypt N=2**14); a production "
              "instance does not store passwords with a weaker hash", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)  # said once above, not per token
    raise_open_file_limit()
    return_large_allocations_to_the_system()

    sockets = None
    if args.fd is not None:
        sockets = [inherited_socket(args.fd)]
        log.info("serving on inherited socket fd %d at %s", args.fd, sockets[0].getsockname())
    server = Server(
        uvicorn.Config(
            create_app(config),
            # h11 with a deadline for each request: uvicorn has no handshake timeout of its own.
            http=with_deadline(config.handshake_timeout_seconds),
            host=args.host or "127.0.0.1",
            port=8000 if args.port is None else args.port,
            # websockets-sansio, answering every upgrade it cannot parse and closing one left unanswered.
            ws=answering_websockets(config.handshake_timeout_seconds),
            ws_max_size=config.max_message_bytes,
            # No permessage-deflate: frames are small JSON, and compressing private data with
            # text a client chose is a side channel (CRIME/BREACH). It also saves each socket
            # its zlib buffers, which uvicorn frees only with its protocol objects, in GC cycles.
            ws_per_message_deflate=False,
            # A ping every interval; no pong within the timeout closes the socket (1011).
            ws_ping_interval=config.heartbeat_interval_seconds,
            ws_ping_timeout=config.heartbeat_timeout_seconds,
            lifespan="on",
            log_config=None,  # keep the root logger configured above
            log_level=args.log_level,
            server_header=False,
            # A peer that stops reading holds its socket open until this runs out.
            timeout_graceful_shutdown=2,
        )
    )
    # On SIGTERM/SIGINT uvicorn closes the sockets, then the lifespan closes pools and Redis.
    # Afterwards uvicorn re-raises the signal under the previous handler: make that an
    # ordinary exit, so a graceful stop ends with status 0 either way.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
