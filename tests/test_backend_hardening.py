"""The reference backend refuses what an attacker or a crowd throws at it (issues 11 and 12).

Each test talks to a real `python -m backend` process over real sockets: the `websockets`
client where a well-behaved client will do, a raw TCP stream for handshakes no library
would send. The module starts one embedded PostgreSQL and Redis and four instances:

- `development`: short handshake timer (1 s), the message path and the handshake limits;
- `production`: the handshake refusals, as a deployment would answer them (Origin required);
- `crowd`: a plans file whose default plan allows hundreds of sockets, for the Redis pool;
- `few-files`: started with a file-descriptor soft limit below its hard limit, both small,
  for the limit raised at start and for accept() failing when it runs out.

Starting the backend with a weak signing secret (class 6) runs `python -m backend` on its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.launcher import BackendProcess, EmbeddedServices

REPO = Path(__file__).resolve().parent.parent
ORIGIN = "https://app.example.com"
MARKER = "jwt-auth"
HANDSHAKE_SECONDS = 1.0
# How long a frame the backend owes us may take to arrive.
ANSWER_SECONDS = 3.0
# The default plan of the crowd instance: one user may hold this many sockets at once.
CROWD_SOCKETS = 250
# The few-files instance: soft limit at start, and the hard limit it may raise it to.
FEW_FILES_SOFT, FEW_FILES_HARD = 64, 200
# The value docker-compose.yml used to fall back to when JWT_SECRET was not set.
COMPOSE_DEFAULT_SECRET = "change-me-in-production"

# `python -c` program for the few-files instance: lower the limits, then run the backend as
# `python -m backend` would (the launcher appends `--fd N`).
FEW_FILES_PROGRAM = (
    "import resource, sys;"
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FEW_FILES_SOFT}, {FEW_FILES_HARD}));"
    "from backend.__main__ import main;"
    "sys.exit(main(sys.argv[1:]))"
)


@dataclass
class Instance:
    """One running backend, and what a test needs to mint tokens for it."""

    backend: BackendProcess
    secret: str
    issuer: str
    audience: str
    mode: str

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://")

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname, parts.port

    def register(self) -> dict:
        """A new Free account; the token document of its first session."""
        email = f"hardening-{uuid.uuid4().hex[:12]}@example.com"
        response = httpx.post(self.url + "/auth/register", json={"email": email, "password": "a long passphrase"},
                              timeout=10)
        assert response.status_code == 201, f"sign-up on {self.backend.name} failed: {response.status_code} {response.text}"
        return response.json()

    def mint(self, account: dict, lifetime: float = 300) -> str:
        """A correctly signed access token for the account's session, valid for `lifetime` seconds."""
        now = int(time.time())
        claims = {"sub": account["user_id"], "sid": account["session_id"], "iat": now, "exp": now + int(lifetime),
                  "iss": self.issuer, "aud": self.audience, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def log_size(self) -> int:
        return self.backend.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with open(self.backend.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


def _plans_with_a_crowd(workdir: Path) -> Path:
    """backend/plans.toml with the default plan allowing CROWD_SOCKETS sockets and messages."""
    text = (REPO / "backend" / "plans.toml").read_text()
    free = re.search(r"\[plans\.free\]\n(.*?)\n\n", text, re.S)
    crowd = re.sub(r"max_connections_per_user = \d+", f"max_connections_per_user = {CROWD_SOCKETS + 50}", free.group(0))
    crowd = re.sub(r"messages_per_minute = \d+", "messages_per_minute = 100000", crowd)
    path = workdir / "crowd-plans.toml"
    path.write_text(text.replace(free.group(0), crowd))
    return path


@pytest.fixture(scope="module")
def services():
    embedded = EmbeddedServices()
    try:
        database_url, redis_url = embedded.start_postgres(), embedded.start_redis()
        yield embedded, database_url, redis_url
    finally:
        embedded.stop()


@pytest.fixture(scope="module")
def instances(services):
    """name -> Instance, all four started at once; stopped when the module ends."""
    embedded, database_url, redis_url = services
    secret = secrets.token_urlsafe(32)
    shared = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "JWT_SECRET": secret, "ALLOWED_ORIGINS": ORIGIN}
    development = {**shared, "BACKEND_MODE": "development", "HANDSHAKE_TIMEOUT_SECONDS": str(HANDSHAKE_SECONDS)}
    launches = {
        "development": (development, ("-m", "backend")),
        "production": ({**shared, "BACKEND_MODE": "production"}, ("-m", "backend")),
        "crowd": ({**development, "HANDSHAKE_TIMEOUT_SECONDS": "10",
                   "PLANS_FILE": str(_plans_with_a_crowd(embedded.workdir))}, ("-m", "backend")),
        "few-files": ({**development, "HANDSHAKE_TIMEOUT_SECONDS": "10"}, ("-c", FEW_FILES_PROGRAM)),
    }
    started = time.monotonic()
    backends = {name: embedded._launch(name, env, program=program) for name, (env, program) in launches.items()}
    found = {}
    for name, backend in backends.items():
        embedded._wait_healthy(backend, started + 30)
        document = httpx.get(backend.url + "/ws/config", timeout=5).json()
        found[name] = Instance(backend, secret, document["auth"]["issuer"], document["auth"]["audience"],
                               document["mode"])
    yield found
    for backend in backends.values():
        embedded.stop_backend(backend)


@pytest.fixture(scope="module")
def development(instances) -> Instance:
    return instances["development"]


@pytest.fixture(scope="module")
def production(instances) -> Instance:
    return instances["production"]


# Helpers -------------------------------------------------------------------------------

async def open_socket(instance: Instance, token: str, path: str = "/ws") -> ClientConnection:
    """An accepted socket (bearer header); for /ws, its `connected` frame already read."""
    websocket = await connect(instance.ws + path, origin=ORIGIN, additional_headers={"Authorization": f"Bearer {token}"},
                              open_timeout=5, max_size=None)
    if path != "/ws/mcp":
        connected = json.loads(await asyncio.wait_for(websocket.recv(), ANSWER_SECONDS))
        assert connected["type"] == "connected", f"expected the connected frame first, got {connected}"
    return websocket


async def answer(websocket: ClientConnection, what: str) -> dict:
    """The next frame, or a failure saying the backend stayed silent after `what`."""
    try:
        text = await asyncio.wait_for(websocket.recv(), ANSWER_SECONDS)
    except asyncio.TimeoutError:
        raise AssertionError(f"the backend did not answer {what} within {ANSWER_SECONDS} s; the socket went mute")
    except ConnectionClosed as closed:
        raise AssertionError(f"the backend closed the socket ({closed.rcvd}) instead of answering {what}")
    return json.loads(text)


async def still_serves(websocket: ClientConnection, what: str) -> None:
    """A ping on the envelope is answered with its pong."""
    await websocket.send(json.dumps({"type": "ping", "id": "still-there"}))
    frame = await answer(websocket, f"a ping after {what}")
    assert (frame["type"], frame["id"]) == ("pong", "still-there"), f"after {what} a ping got {frame}, expected pong"


async def close_code(websocket: ClientConnection, within: float, what: str) -> int:
    """The close code the server ends the socket with, waiting at most `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                await websocket.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006
    except TimeoutError:
        raise AssertionError(f"the socket was still open {within} s after {what}; the backend no longer governs it")


def raw_exchange(instance: Instance, request: bytes, wait: float = ANSWER_SECONDS) -> tuple[bytes, float, bool]:
    """Send `request` on a fresh TCP connection; what came back, when, and whether the server closed.

    Reads until the server closes or `wait` seconds pass. Returns (bytes received, seconds
    until the server closed or the wait ran out, closed by the server).
    """
    started = time.monotonic()
    with socket.create_connection(instance.address, timeout=wait) as conn:
        try:
            conn.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before the whole request was written
        received = b""
        conn.settimeout(0.05)
        while time.monotonic() - started < wait:
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return received, time.monotonic() - started, True
            if not chunk:
                return received, time.monotonic() - started, True
            received += chunk
        return received, time.monotonic() - started, False


def upgrade_request(instance: Instance, headers: list[tuple[str, str]], path: str = "/ws",
                    version: str = "HTTP/1.1", key: bool = True, ws_version: str = "13") -> bytes:
    host, port = instance.address
    lines = [f"GET {path} {version}", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Version: {ws_version}", f"Origin: {ORIGIN}"]
    if key:
        lines.append(f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(response: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return int(match.group(1)) if match else None


def encoded(token: str) -> str:
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


# Class 1 and 2: what a socket is sent never frees it from the rules ----------------------

# A lone surrogate escape, as the client writes it in its JSON text.
LONE = "\\ud800"
SURROGATE_FRAMES = {
    "in the message type": '{"type": "%s", "id": "s-1"}' % LONE,
    "in the message id": '{"type": "ping", "id": "%s"}' % LONE,
    "in a question": '{"type": "chat", "id": "s-1", "payload": {"text": "balance %s"}}' % LONE,
    "in a thread title": '{"type": "thread_create", "id": "s-1", "payload": {"title": "t%s", "scope": "user"}}' % LONE,
    "in a key": '{"type": "ping", "id": "s-1", "payload": {"%s": 1}}' % LONE,
}


@pytest.mark.parametrize("where", SURROGATE_FRAMES)
def test_a_lone_surrogate_is_answered_invalid_json_and_the_socket_keeps_serving(development, where):
    account = development.register()

    async def scenario():
        async with await open_socket(development, development.mint(account)) as websocket:
            await websocket.send(SURROGATE_FRAMES[where])
            frame = await answer(websocket, f"a lone surrogate {where}")
            assert frame["type"] == "error" and frame["payload"]["code"] == "invalid_json", (
                f"a lone surrogate {where} was answered {frame}; expected error invalid_json")
            await still_serves(websocket, f"a lone surrogate {where}")

    asyncio.run(scenario())


def test_after_a_lone_surrogate_the_socket_is_still_closed_when_its_token_expires(development):
    account = development.register()
    token = development.mint(account, lifetime=2)

    async def scenario():
        websocket = await open_socket(development, token)
        await websocket.send(SURROGATE_FRAMES["in the message type"])
        expires_in = jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()
        code = await close_code(websocket, expires_in + 2, "its token expired")
        assert code == 4001, f"after a lone surrogate, the expired socket was closed with {code}; expected 4001"

    asyncio.run(scenario())


def test_after_a_lone_surrogate_the_connection_limit_and_sign_out_still_apply(development):
    account = development.register()  # Free: 3 sockets at once
    token = development.mint(account)

    async def scenario():
        oldest = await open_socket(development, token)
        await oldest.send(SURROGATE_FRAMES["in the message type"])
        await oldest.send(SURROGATE_FRAMES["in the message id"])
        newer = [await open_socket(development, token) for _ in range(3)]
        code = await close_code(oldest, ANSWER_SECONDS, "three newer sockets of a Free user opened")
        assert code == 4008, f"the oldest socket (sent lone surrogates) was closed with {code}; expected 4008"
        for websocket in newer:
            await websocket.send(SURROGATE_FRAMES["in a question"])
        response = httpx.post(development.url + "/auth/logout", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 204, f"sign-out failed: {response.status_code} {response.text}"
        codes = [await close_code(websocket, ANSWER_SECONDS, "its session signed out") for websocket in newer]
        assert codes == [4009] * 3, f"after sign-out the sockets that sent lone surrogates closed with {codes}; expected 4009"

    asyncio.run(scenario())


NESTED = "[" * 3000 + "]" * 3000


def test_deeply_nested_json_is_answered_invalid_json_on_the_envelope(development):
    account = development.register()

    async def scenario():
        async with await open_socket(development, development.mint(account)) as websocket:
            await websocket.send(NESTED)
            frame = await answer(websocket, "3,000 nested arrays")
            assert frame["type"] == "error" and frame["payload"]["code"] == "invalid_json", (
                f"3,000 nested arrays were answered {frame}; expected error invalid_json")
            await still_serves(websocket, "3,000 nested arrays")

    asyncio.run(scenario())


@pytest.mark.parametrize("frame", [NESTED, '{"jsonrpc": "2.0", "method": "ping", "id": "%s"}' % LONE],
                         ids=["3,000 nested arrays", "a lone surrogate in the id"])
def test_unparseable_json_rpc_is_answered_parse_error_and_the_socket_keeps_serving(development, frame):
    account = development.register()

    async def scenario():
        async with await open_socket(development, development.mint(account), "/ws/mcp") as websocket:
            await websocket.send(frame)
            reply = await answer(websocket, "an unparseable JSON-RPC frame")
            assert reply.get("error", {}).get("code") == -32700 and reply.get("id") is None, (
                f"an unparseable JSON-RPC frame was answered {reply}; expected error -32700 with id null")
            await websocket.send(json.dumps({"jsonrpc": "2.0", "method": "ping", "id": 7}))
            pong = await answer(websocket, "a ping after an unparseable frame")
            assert pong == {"jsonrpc": "2.0", "id": 7, "result": {}}, f"the ping afterwards got {pong}"

    asyncio.run(scenario())


# Class 3: oversized handshakes are answered, and nothing is held open ---------------------

OVERSIZED = {
    "a 100 KB token": (lambda inst: upgrade_request(inst, [("Authorization", "Bearer " + "a" * 100_000)]), (431, 400)),
    "a 100 KB subprotocol list": (lambda inst: upgrade_request(inst, [("Sec-WebSocket-Protocol",
                                                                       f"{MARKER}, jwt." + "a" * 100_000)]), (431, 400)),
    "a 9 KB header line": (lambda inst: upgrade_request(inst, [("X-Padding", "p" * 9000)]), (431, 400)),
    "a 9 KB request path": (lambda inst: upgrade_request(inst, [], path="/ws?" + "q" * 9000), (414, 431, 400)),
    "200 headers of 100 bytes": (lambda inst: upgrade_request(inst, [(f"X-H{n}", "h" * 100) for n in range(200)]),
                                 (431, 400)),
}


@pytest.mark.parametrize("case", OVERSIZED)
def test_an_oversized_handshake_is_answered_and_closed_at_once(development, case):
    build, statuses = OVERSIZED[case]
    response, seconds, closed = raw_exchange(development, build(development), wait=HANDSHAKE_SECONDS + 1.5)
    status = status_of(response)
    assert status in statuses, (
        f"a handshake with {case} was answered {response[:80]!r} after {seconds:.1f} s; expected HTTP "
        f"{' or '.join(map(str, statuses))}")
    assert closed and seconds <= HANDSHAKE_SECONDS + 0.5, (
        f"after answering {status} to {case} the backend held the connection {seconds:.1f} s; expected it closed "
        f"within the handshake timeout ({HANDSHAKE_SECONDS} s)")


# Class 4 and 5: a handshake is either unambiguous HTTP/1.1 WebSocket or refused -----------

@pytest.fixture(scope="module")
def two_users(production) -> tuple[str, str]:
    """Valid access tokens of two people on the production instance."""
    return production.mint(production.register()), production.mint(production.register())


def test_a_single_credential_is_still_accepted_in_every_carrier(production, two_users):
    alice, _ = two_users
    for headers in ([("Authorization", f"Bearer {alice}")], [("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{alice}")],
                    [("Sec-WebSocket-Protocol", f"{MARKER}, {encoded(alice)}")]):
        response, _, _ = raw_exchange(production, upgrade_request(production, headers), wait=0.5)
        assert status_of(response) == 101, f"one valid credential ({headers[0][0]}) was answered {response[:200]!r}"


AMBIGUOUS = {
    "two Authorization headers": lambda a, b: [("Authorization", f"Bearer {a}"), ("Authorization", f"Bearer {b}")],
    "a bearer token and a subprotocol token for someone else": lambda a, b: [
        ("Authorization", f"Bearer {a}"), ("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{b}")],
    "a bearer token and the same token as a subprotocol": lambda a, b: [
        ("Authorization", f"Bearer {a}"), ("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{a}")],
    "a bearer token and an encoded subprotocol token": lambda a, b: [
        ("Authorization", f"Bearer {a}"), ("Sec-WebSocket-Protocol", f"{MARKER}, {encoded(b)}")],
    "two jwt subprotocol tokens": lambda a, b: [("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{a}, jwt.{b}")],
    "two jwt subprotocol tokens in two headers": lambda a, b: [
        ("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{a}"), ("Sec-WebSocket-Protocol", f"jwt.{b}")],
    "a jwt subprotocol token and an encoded one": lambda a, b: [
        ("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{a}, {encoded(b)}")],
    "two encoded subprotocol tokens": lambda a, b: [("Sec-WebSocket-Protocol", f"{MARKER}, {encoded(a)}, {encoded(b)}")],
}


@pytest.mark.parametrize("case", AMBIGUOUS)
@pytest.mark.parametrize("path", ["/ws", "/ws/mcp"])
def test_two_credentials_are_refused_before_the_upgrade(production, two_users, case, path):
    alice, bob = two_users
    response, _, _ = raw_exchange(production, upgrade_request(production, AMBIGUOUS[case](alice, bob), path=path),
                                  wait=1.0)
    assert status_of(response) in (400, 401), (
        f"a handshake on {path} with {case} was answered {response[:120]!r}; expected 401 (or 400) before the upgrade")


def test_an_http_1_0_upgrade_is_refused(production, two_users):
    alice, _ = two_users
    request = upgrade_request(production, [("Authorization", f"Bearer {alice}")], version="HTTP/1.0")
    response, _, _ = raw_exchange(production, request, wait=1.0)
    assert status_of(response) == 400, (
        f"an HTTP/1.0 upgrade with a valid token was answered {response[:120]!r}; expected 400 (RFC 6455 needs HTTP/1.1)")


@pytest.mark.parametrize("broken", ["no Sec-WebSocket-Key", "Sec-WebSocket-Version 8"])
def test_an_upgrade_without_a_key_or_with_another_version_is_refused(production, two_users, broken):
    alice, _ = two_users
    options = {"key": False} if broken == "no Sec-WebSocket-Key" else {"ws_version": "8"}
    request = upgrade_request(production, [("Authorization", f"Bearer {alice}")], **options)
    response, _, _ = raw_exchange(production, request, wait=1.0)
    status = status_of(response)
    assert status is not None and 400 <= status < 500, (
        f"an upgrade with {broken} and a valid token was answered {response[:120]!r}; expected a 4xx refusal")


# Class 6: production refuses to sign with a secret anyone may know ------------------------

def _start_alone(services, mode: str, secret: str, **extra: str) -> subprocess.Popen:
    _, database_url, redis_url = services
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "JWT_SECRET": secret,
           "BACKEND_MODE": mode, "PYTHONUNBUFFERED": "1", **extra}
    return subprocess.Popen([sys.executable, "-m", "backend", "--port", "0"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _until_started_or_exited(process: subprocess.Popen, within: float = 15) -> tuple[bool, list[str]]:
    """(started serving, stderr lines so far); a process that started is stopped here."""
    lines: list[str] = []
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                process.wait(5)
                return False, lines
            lines.append(line.rstrip("\n"))
            if "Application startup complete" in line:
                return True, lines
        raise AssertionError(f"the backend neither started nor exited within {within} s: {lines}")
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        process.stderr.close()
        process.stdout.close()


@pytest.mark.parametrize("secret", [COMPOSE_DEFAULT_SECRET, "s" * 31],
                         ids=["the default docker-compose.yml shipped", "31 bytes"])
def test_production_refuses_to_start_with_a_weak_secret(services, secret):
    process = _start_alone(services, "production", secret)
    started, lines = _until_started_or_exited(process)
    assert not started, f"a production instance started with JWT_SECRET {secret[:8]}...; expected it to refuse"
    assert process.returncode != 0, f"the refusing instance exited with {process.returncode}; expected non-zero"
    assert len(lines) == 1 and "JWT_SECRET" in lines[0], f"expected one line saying why on stderr, got {lines}"
    assert secret not in lines[0], f"the refusal repeats the secret: {lines[0]}"


def test_development_starts_with_a_weak_secret_and_says_so(services):
    process = _start_alone(services, "development", COMPOSE_DEFAULT_SECRET)
    started, lines = _until_started_or_exited(process)
    assert started, f"a development instance with a weak secret did not start: {lines}"
    warnings = [line for line in lines if "WARNING" in line and "JWT_SECRET" in line]
    assert len(warnings) == 1, f"expected one warning about JWT_SECRET, got {lines}"


def test_production_refuses_a_password_hash_cost_below_the_default(services):
    process = _start_alone(services, "production", "p" * 40, PASSWORD_HASH_COST="10")
    started, lines = _until_started_or_exited(process)
    assert not started, "a production instance started with PASSWORD_HASH_COST=10; expected it to refuse"
    assert len(lines) == 1 and "PASSWORD_HASH_COST" in lines[0], f"expected one line saying why, got {lines}"


# Issue 11: the backend under load ----------------------------------------------------------

def test_a_burst_larger_than_the_redis_pool_waits_instead_of_failing(instances):
    crowd = instances["crowd"]
    token = crowd.mint(crowd.register())

    async def scenario():
        # Handshakes at once: each registers its socket in Redis.
        sockets = await asyncio.gather(*(open_socket(crowd, token, "/ws/mcp") for _ in range(CROWD_SOCKETS)),
                                       return_exceptions=True)
        refused = [repr(s) for s in sockets if isinstance(s, BaseException)]
        opened = [s for s in sockets if not isinstance(s, BaseException)]
        try:
            assert not refused, f"{len(refused)} of {CROWD_SOCKETS} handshakes at once were refused, e.g. {refused[0]}"
            # Then a request on every socket at once: each is counted by the rate limit in
            # Redis, then answered on its own socket. The backend is paused while they are
            # sent, so that they all reach it at once.
            for round_ in range(2):
                os.kill(crowd.backend.process.pid, signal.SIGSTOP)
                try:
                    await asyncio.gather(*(s.send(json.dumps({"jsonrpc": "2.0", "method": "tools/list", "id": n}))
                                           for n, s in enumerate(opened)))
                finally:
                    os.kill(crowd.backend.process.pid, signal.SIGCONT)
                replies = await asyncio.gather(*(answer(s, "a request") for s in opened))
                failed = [r for r in replies if "result" not in r]
                assert not failed, (f"{len(failed)} of {len(opened)} requests sent at once were answered "
                                    f"{failed[0]}; expected every one to wait its turn for Redis")
        finally:
            await asyncio.gather(*(s.close() for s in opened))

    asyncio.run(scenario())


def _limits(pid: int) -> tuple[int, int]:
    line = next(l for l in Path(f"/proc/{pid}/limits").read_text().splitlines() if l.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


def test_the_file_descriptor_limit_is_raised_to_the_hard_limit_and_reported(instances):
    few = instances["few-files"]
    assert _limits(few.backend.process.pid) == (FEW_FILES_HARD, FEW_FILES_HARD), (
        f"the backend runs with open-file limits {_limits(few.backend.process.pid)}; expected the soft limit "
        f"raised to the hard limit {FEW_FILES_HARD}")
    lines = [line for line in few.log_since(0).splitlines() if "file descriptor" in line]
    assert len(lines) == 1 and str(FEW_FILES_SOFT) in lines[0] and str(FEW_FILES_HARD) in lines[0], (
        f"expected one start-up line reporting the limit raised from {FEW_FILES_SOFT} to {FEW_FILES_HARD}, got {lines}")


def test_running_out_of_file_descriptors_is_logged_once_not_per_attempt(instances):
    few = instances["few-files"]
    mark = few.log_size()
    held = []
    try:
        for _ in range(FEW_FILES_HARD + 40):  # more than the backend can accept; the rest wait in its backlog
            held.append(socket.create_connection(few.address, timeout=2))
        time.sleep(2.5)  # accept() keeps failing meanwhile: long enough for a per-attempt log to show
        log = few.log_since(mark)
    finally:
        for conn in held:
            conn.close()
    accept_lines = [line for line in log.splitlines() if "accept" in line.lower()]
    assert "Traceback" not in log, f"running out of file descriptors logged tracebacks:\n{log[:2000]}"
    assert len(accept_lines) == 1, (
        f"accept() failing for 2.5 s was logged {len(accept_lines)} times; expected once per interval:\n"
        + "\n".join(accept_lines[:5]))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # once the connections are gone it serves again
        try:
            if httpx.get(few.url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the backend did not serve /health again after the held connections closed")
