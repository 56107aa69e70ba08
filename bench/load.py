"""What the benchmarks share: a reference backend of their own on loopback, people with two
devices, and the two clients compared (the harness's and a bare one).

Every benchmark starts what it measures (embedded PostgreSQL and Redis, one reference
backend instance in development mode with production timers) and stops it on success, on
failure and on Ctrl-C. None of them ever targets anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import connect

from support.launcher import REPO_ROOT, BackendProcess, EmbeddedServices
from support.loop import bounded as run_bounded

ORIGIN = "https://app.example.com"
ISSUER, AUDIENCE = "reference-backend", "chat-clients"
# How many handshakes or sign-ups are in flight at once: the same for both clients compared,
# so the ratio measures the client, not a different burst.
IN_FLIGHT = 64
SIGN_UPS_IN_FLIGHT = 8


def raise_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class ReferenceBackend:
    """One reference backend instance on loopback, with the secret it signs tokens with."""

    services: EmbeddedServices
    process: BackendProcess
    secret: str
    redis_url: str

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def socket_url(self) -> str:
        return self.process.url.replace("http://", "ws://", 1) + "/ws"

    @property
    def pid(self) -> int:
        return self.process.process.pid  # the orphan guard execs the backend: same pid


@contextlib.contextmanager
def reference_backend(**environment: str):
    """Start PostgreSQL, Redis and one backend instance; stop them all when the block ends."""
    raise_file_limit()
    services = EmbeddedServices()
    try:
        secret = secrets.token_urlsafe(32)
        redis_url = services.start_redis()
        env = {"DATABASE_URL": services.start_postgres(), "REDIS_URL": redis_url,
               "JWT_SECRET": secret, "ALLOWED_ORIGINS": ORIGIN, "BACKEND_MODE": "development", **environment}
        process = services.start_backends({"bench": env})[0]
        yield ReferenceBackend(services, process, secret, redis_url)
    finally:
        services.stop()


@dataclass
class Device:
    name: str
    user_id: str
    session_id: str
    access_token: str


@dataclass
class Person:
    name: str
    email: str
    laptop: Device
    phone: Device

    @property
    def devices(self) -> list[Device]:
        return [self.laptop, self.phone]


async def sign_up_people(base_url: str, count: int, plan: str = "pro") -> list[Person]:
    """``count`` people, each signed up on a laptop and signed in on a phone (two sessions)."""
    gate = asyncio.Semaphore(SIGN_UPS_IN_FLIGHT)
    tag = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def tokens(path: str, body: dict, expected: int, what: str) -> dict:
            async with gate:
                answer = await client.post(path, json=body)
            if answer.status_code != expected:
                raise RuntimeError(f"{what} ({path}) answered HTTP {answer.status_code}: {answer.text[:200]}")
            return answer.json()

        async def person(number: int) -> Person:
            name, password = f"person{number}", secrets.token_urlsafe(12)
            email = f"{name}.{tag}@example.test"
            laptop = await tokens("/auth/register", {"email": email, "password": password, "display_name": name,
                                                     "plan": plan, "device_type": "laptop_browser"},
                                  201, f"the sign-up of {name}")
            phone = await tokens("/auth/login", {"email": email, "password": password,
                                                 "device_type": "mobile_browser"}, 200, f"{name} signing in")
            return Person(name, email, *(Device(device, data["user_id"], data["session_id"], data["access_token"])
                                         for device, data in (("laptop", laptop), ("phone", phone))))

        return list(await asyncio.gather(*(person(number) for number in range(count))))


@dataclass
class PhaseFigures:
    """What one client measured in one run: the same fields for the harness and the bare loop."""

    sockets: int = 0
    connect_seconds: float = 0.0
    events: int = 0
    frames: int = 0
    ask_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    sweep_seconds: float = 0.0
    cpu_seconds: float = 0.0
    leaks: int = 0
    unanswered: int = 0
    errors: list[str] = field(default_factory=list)

    @classmethod
    def combined(cls, runs: list["PhaseFigures"]) -> "PhaseFigures":
        """Several rounds of one client as one: totals, so the rates are total work over total time.

        CPU is averaged over the rounds, so that per person it stays the cost of one round.
        """
        total = cls()
        for run in runs:
            for name in ("sockets", "connect_seconds", "events", "frames", "ask_seconds", "sweep_seconds",
                         "cpu_seconds", "leaks", "unanswered"):
                setattr(total, name, getattr(total, name) + getattr(run, name))
            total.latencies += run.latencies
            total.errors += run.errors
        total.cpu_seconds /= max(1, len(runs))
        total.sweep_seconds /= max(1, len(runs))
        return total

    @property
    def connect_rate(self) -> float:
        return self.sockets / self.connect_seconds if self.connect_seconds else 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.ask_seconds if self.ask_seconds else 0.0

    def summary(self, people: int) -> dict:
        ordered = sorted(self.latencies)
        return {
            "sockets": self.sockets,
            "connect_rate_per_s": round(self.connect_rate, 1),
            "events": self.events,
            "frames": self.frames,
            "events_per_s": round(self.events_per_second, 1),
            "answer_median_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
            "answer_p99_ms": round(percentile(ordered, 0.99) * 1000, 1) if ordered else None,
            "unanswered": self.unanswered,
            "sweep_s": round(self.sweep_seconds, 3),
            "client_cpu_ms_per_person": round(self.cpu_seconds / people * 1000, 2) if people else None,
            "leaks": self.leaks,
            "errors": self.errors[:5],
        }


def percentile(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of sorted values (nearest rank)."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[rank]


async def bounded(coroutines, limit: int = IN_FLIGHT) -> list:
    """Run ``coroutines`` with at most ``limit`` at once (by default as many as both clients have in flight)."""
    return await run_bounded(coroutines, limit)


class BareSocket:
    """The baseline: a plain ``websockets`` client that parses each frame and matches ids."""

    def __init__(self) -> None:
        self.socket = None
        self.frames = 0
        self.events = 0
        self._waiting: dict[str, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None

    async def open(self, url: str, token: str) -> "BareSocket":
        self.socket = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                    origin=ORIGIN, ping_interval=None, max_size=None, open_timeout=30)
        welcome = json.loads(await self.socket.recv())
        if welcome.get("type") != "connected":
            raise RuntimeError(f"expected the welcome frame, received {welcome}")
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.socket:
                message = json.loads(text)
                self.frames += 1
                kind = message.get("type", "")
                if kind.startswith(("agent_", "tool_")):
                    self.events += 1
                waiting = self._waiting.get(message.get("id"))
                if waiting is not None and kind in ("agent_completed", "fence", "error") and not waiting.done():
                    waiting.set_result(message)

    async def request(self, message: dict, timeout: float) -> dict:
        """Send ``message`` and wait for its final answer (agent_completed, fence or error)."""
        waiting = asyncio.get_running_loop().create_future()
        self._waiting[message["id"]] = waiting
        await self.socket.send(json.dumps(message))
        try:
            return await asyncio.wait_for(waiting, timeout)
        finally:
            del self._waiting[message["id"]]

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


async def bare_run(socket_url: str, people: list[Person], questions: int, timeout: float) -> PhaseFigures:
    """The bare loop: connect every device, each laptop asks ``questions``, fence every socket."""
    figures = PhaseFigures()
    cpu = time.process_time()
    started = time.perf_counter()
    sockets = await bounded([BareSocket().open(socket_url, device.access_token)
                             for person in people for device in person.devices])
    figures.connect_seconds, figures.sockets = time.perf_counter() - started, len(sockets)
    laptops = sockets[0::2]

    async def ask(number: int, socket: BareSocket) -> None:
        for question in range(questions):
            asked = time.perf_counter()
            try:
                answer = await socket.request({"type": "chat", "id": f"bare-{number}-{question}",
                                               "payload": {"text": f"What is my balance? ({number}.{question})"}},
                                              timeout)
            except asyncio.TimeoutError:
                figures.unanswered += 1
                continue
            if answer["type"] != "agent_completed":
                figures.errors.append(json.dumps(answer)[:200])
                figures.unanswered += 1
            else:
                figures.latencies.append(time.perf_counter() - asked)

    started = time.perf_counter()
    await asyncio.gather(*(ask(number, socket) for number, socket in enumerate(laptops)))
    figures.ask_seconds = time.perf_counter() - started
    started = time.perf_counter()
    await bounded([socket.request({"type": "fence", "id": f"fence-{n}", "payload": {}}, timeout)
                   for n, socket in enumerate(sockets)])
    figures.sweep_seconds = time.perf_counter() - started
    figures.events = sum(s.events for s in sockets)
    figures.frames = sum(s.frames for s in sockets)
    figures.cpu_seconds = time.process_time() - cpu
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    return figures


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def report_line(label: str, harness: float, bare: float, unit: str) -> str:
    return f"  {label:<28} harness {harness:>10.1f} {unit:<10} bare {bare:>10.1f} {unit:<10} ratio {ratio(harness, bare):.2f}"



@contextlib.contextmanager
def bare_server(secret: str, issuer: str = ISSUER, audience: str = AUDIENCE):
    """Start bench/bare_server.py on a loopback socket it inherits; yield its ws:// URL; stop it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_server", "--fd", str(listener.fileno()),
         "--issuer", issuer, "--audience", audience],
        cwd=REPO_ROOT, env={**os.environ, "JWT_SECRET": secret}, pass_fds=(listener.fileno(),),
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    listener.close()
    try:
        ready = process.stdout.readline()
        if not ready.startswith("READY"):
            raise RuntimeError(f"the bare server did not start (exit code {process.poll()}): {ready!r}")
        yield f"ws://127.0.0.1:{port}/ws", process.pid
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        process.stdout.close()
