"""Outages at chosen moments (RES-01, RES-02) and a full instance (RES-05).

A database outage is made to fall in the middle of an operation: the link's proxy is armed
for the moment the service sends the statement that operation writes (the tables are the
contract's, docs/contract.md section 8) and cuts the link right then, that statement
undelivered. Each operation knows how the person is answered, what "all of it or none of it"
means for its rows, and how to do it again once the database is back.

Recovery is polled for, within RECOVERY_SECONDS: the service must come back by itself, and
the bounded wait is what "by itself, soon" means. Nothing here sleeps to prove a negative.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from .accounts import ApiError
from .actors import Actor, AgentRequest, Device
from .connection import HandshakeRefused, RecordedConnection
from .database import DatabaseProbe
from .phrases import device_type
from .questions import check_agent_events
from .store_proxy import LinkProxy

# How long the service may take to work again once a dependency is back.
RECOVERY_SECONDS = 5.0
# The contract's answer to an HTTP request a dependency failed (docs/contract.md, section 16).
UNAVAILABLE = "unavailable"
# The contract's errors on a socket for a message a dependency failed.
SOCKET_OUTAGE_ERRORS = ("unavailable", "agent_failed")


@dataclass
class Interrupted:
    """An operation an outage cut short: who did it, what the service answered, what was there before."""

    operation: "Operation"
    actor: Actor
    answer: Any = None
    before: Any = None
    device: Device | None = None
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.actor.name}'s {self.operation.what}"


class Operation:
    """One thing a person does that writes to the database, and how to judge it after an outage."""

    what = "operation"
    moment = ""  # a regex of the statement the cut falls on
    moment_said = ""  # the same, said for a person

    async def attempt(self, actor: Actor, database: DatabaseProbe) -> Interrupted:
        raise NotImplementedError

    async def check_told(self, done: Interrupted, timeout: float) -> None:
        check_http_unavailable(done.answer, str(done))

    async def check_all_or_nothing(self, done: Interrupted, database: DatabaseProbe) -> None:
        raise NotImplementedError

    async def check_again(self, done: Interrupted, database: DatabaseProbe) -> None:
        raise NotImplementedError


class SignUp(Operation):
    what = "sign-up"
    moment = r"insert\s+into\s+user_sessions"
    moment_said = "as it writes the new account's first session"

    async def attempt(self, actor: Actor, database: DatabaseProbe) -> Interrupted:
        answer = await actor.cast.api.post("/auth/register", {
            "email": actor.email, "password": actor.password, "display_name": actor.name,
            "device_type": device_type("laptop")})
        return Interrupted(self, actor, answer)

    async def check_all_or_nothing(self, done: Interrupted, database: DatabaseProbe) -> None:
        user = await database.user_by_email(done.actor.email)
        if user is not None and not await database.sessions_of(user["id"]):
            raise AssertionError(f"{done} was cut short, and the service keeps {done.actor.name}'s account "
                                 f"without any session: half-written; expected the account with its session, or "
                                 f"neither")

    async def check_again(self, done: Interrupted, database: DatabaseProbe) -> None:
        await until_recovered(lambda: done.actor.sign_up("free"), f"{done.actor.name} signing up again")


class SignIn(Operation):
    what = "sign-in on her phone"
    moment = r"insert\s+into\s+user_sessions"
    moment_said = "as it writes the new session"

    async def attempt(self, actor: Actor, database: DatabaseProbe) -> Interrupted:
        before = await database.sessions_of(_signed_up(actor))
        answer = await actor.cast.api.post("/auth/login", {
            "email": actor.email, "password": actor.password, "device_type": device_type("phone")})
        return Interrupted(self, actor, answer, before=[row["id"] for row in before])

    async def check_all_or_nothing(self, done: Interrupted, database: DatabaseProbe) -> None:
        after = [row["id"] for row in await database.sessions_of(_signed_up(done.actor))]
        added = [session for session in after if session not in done.before]
        if added:
            raise AssertionError(f"{done} was answered HTTP {done.answer.status_code}, yet the service recorded "
                                 f"{len(added)} new session(s) for it, which nobody holds tokens for")

    async def check_again(self, done: Interrupted, database: DatabaseProbe) -> None:
        await until_recovered(lambda: done.actor.sign_in("phone"), f"{done.actor.name} signing in on her phone again")


class Refresh(Operation):
    what = "refresh of her laptop's session"
    moment = r"insert\s+into\s+spent_refresh_tokens"
    moment_said = "as it records the used-up refresh token"

    async def attempt(self, actor: Actor, database: DatabaseProbe) -> Interrupted:
        device = actor.device("laptop")
        answer = await actor.cast.api.post("/auth/refresh", {"refresh_token": device.tokens.refresh_token})
        return Interrupted(self, actor, answer, device=device)

    async def check_all_or_nothing(self, done: Interrupted, database: DatabaseProbe) -> None:
        rows = {row["id"]: row for row in await database.sessions_of(_signed_up(done.actor))}
        row = rows.get(done.device.tokens.session_id)
        if row is None or row["revoked_at"] is not None:
            raise AssertionError(f"{done} was cut short, and the session of {done.device} is "
                                 f"{'gone' if row is None else 'revoked'}; expected it live, as before")

    async def check_again(self, done: Interrupted, database: DatabaseProbe) -> None:
        device = done.device

        async def refresh() -> None:
            try:
                await device.refresh(done.actor.cast.api)
            except ApiError as error:
                if error.status == 503:
                    raise
                raise AssertionError(f"{device}'s refresh token no longer works after {done} was cut short "
                                     f"(HTTP {error.status}: {error.body[:200]}): the session was rotated halfway; "
                                     f"expected the old refresh token to work, as nothing was exchanged") from None

        await until_recovered(refresh, f"{device} refreshing its session again")


class ThreadWrite(Operation):
    what = "message in her thread"
    moment = r"insert\s+into\s+thread_messages"
    moment_said = "as it stores the message"

    async def attempt(self, actor: Actor, database: DatabaseProbe) -> Interrupted:
        device = actor.only_connected_device()
        text = f"Pick up milk {secrets.token_hex(3)}"
        first = await actor.thread_request(device.name, "write to", actor.last_thread, text)
        return Interrupted(self, actor, first, device=device, details={"text": text, "thread": actor.last_thread})

    async def check_told(self, done: Interrupted, timeout: float) -> None:
        await check_socket_error(done.device, done.answer.id, timeout, str(done))

    async def check_all_or_nothing(self, done: Interrupted, database: DatabaseProbe) -> None:
        text = done.details["text"]
        stored = [row for row in await database.thread_messages(done.details["thread"]) if row["text"] == text]
        announced = [f for f in done.device.connection.received() if f.type == "thread_message" and f.id == done.answer.id]
        if len(stored) > 1 or bool(stored) != bool(announced):
            raise AssertionError(
                f"{done} was cut short: {done.device} received it in the thread {len(announced)} time(s) and the "
                f"service stored it {len(stored)} time(s); expected the message stored and announced, or neither")

    async def check_again(self, done: Interrupted, database: DatabaseProbe) -> None:
        actor, device, text = done.actor, done.device, done.details["text"]

        async def write() -> None:
            reply = await actor.thread_request(device.name, "write to", done.details["thread"], text)
            if reply.type != "thread_message":
                raise ServiceStillOut(f"{device} was answered {reply.text[:200]}")

        await until_recovered(write, f"{device} writing in the thread again")
        stored = [row for row in await database.thread_messages(done.details["thread"]) if row["text"] == text]
        if len(stored) != 1:
            raise AssertionError(f"the thread holds {len(stored)} copies of {actor.name}'s message after she wrote "
                                 f"it again; expected exactly one")


class AgentRun(Operation):
    what = "question to her agent"
    moment = r"update\s+agent_executions"
    moment_said = "as it records the end of the run"
    question = "What is my account balance?"

    async def attempt(self, actor: Actor, database: DatabaseProbe) -> Interrupted:
        request = await actor.ask(None, self.question)
        await actor.answer_to(request)
        return Interrupted(self, actor, request, device=request.device)

    async def check_told(self, done: Interrupted, timeout: float) -> None:
        await check_socket_error(done.device, done.answer.id, timeout, str(done))

    async def check_all_or_nothing(self, done: Interrupted, database: DatabaseProbe) -> None:
        request: AgentRequest = done.answer
        deadline = asyncio.get_running_loop().time() + RECOVERY_SECONDS
        while True:
            rows = await database.executions_for(done.actor.user_id, request.id)
            running = [row for row in rows if row["status"] == "running"]
            if not running:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{done.actor.name}'s run for {request.question!r} is still recorded 'running' "
                                     f"{RECOVERY_SECONDS:g} s after the database came back; expected it recorded "
                                     f"failed (or completed), never left running")
            await asyncio.sleep(0.1)

    async def check_again(self, done: Interrupted, database: DatabaseProbe) -> None:
        actor = done.actor

        async def ask() -> None:
            request = await actor.ask(done.device.name, "Is everything fine again?")
            events = await actor.answer_to(request)
            if events and events[-1].type == "error":
                raise ServiceStillOut(f"{done.device} was answered {events[-1].text[:200]}")
            check_agent_events(request, events)

        await until_recovered(ask, f"{actor.name} asking her agent again")


# How a feature says what the person was doing -> the operation.
OPERATIONS: dict[str, type[Operation]] = {
    "signs up": SignUp,
    "signs in on her phone": SignIn,
    "refreshes her laptop's session": Refresh,
    "writes in her thread": ThreadWrite,
    "asks her agent a question": AgentRun,
}


def operation(phrase: str) -> Operation:
    try:
        return OPERATIONS[phrase]()
    except KeyError:
        raise ValueError(f"unknown operation {phrase!r}; the features know {', '.join(OPERATIONS)}") from None


async def cut_during(link: LinkProxy, op: Operation, actor: Actor, database: DatabaseProbe) -> Interrupted:
    """Arm the database link to fail at the operation's moment, and have ``actor`` do it."""
    link.cut_when_sent(op.moment)
    done = await op.attempt(actor, database)
    if link.fired is None:
        link.cut()  # as the sentence says: unreachable from here on, moment or not
        raise AssertionError(f"the database link was to fail {op.moment_said}, but {done} never got there; "
                             f"the service answered {_said(done.answer)}")
    return done


class ServiceStillOut(Exception):
    """The service does not work yet; asked again until RECOVERY_SECONDS have passed."""


async def until_recovered(action, what: str) -> None:
    """Do ``action`` until it works, for RECOVERY_SECONDS: the service must recover by itself.

    An answer that says the service is still out (503, an ``unavailable`` error) is retried;
    any other failure is the action's own and fails at once.
    """
    deadline = asyncio.get_running_loop().time() + RECOVERY_SECONDS
    while True:
        try:
            await action()
            return
        except (ServiceStillOut, ApiError) as error:
            if isinstance(error, ApiError) and error.status != 503:
                raise
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{what} still fails {RECOVERY_SECONDS:g} s after the outage ended: {error}; "
                                     f"expected the service to recover by itself") from None
        await asyncio.sleep(0.2)


def check_http_unavailable(answer, what: str) -> None:
    """An HTTP answer saying, as the contract does, that the service is unavailable for now."""
    try:
        code = answer.json().get("error")
    except ValueError:
        code = None
    if answer.status_code != 503 or code != UNAVAILABLE:
        raise AssertionError(f"{what} was answered HTTP {answer.status_code} {answer.text[:200]}; expected HTTP 503 "
                             f"{UNAVAILABLE!r}, telling the person to try again later")


async def check_socket_error(device: Device, message_id: str, timeout: float, what: str) -> None:
    """The socket answered the message with an outage error, and still answers a ping."""
    connection = device.open_connection()
    frame = await connection.wait_for(lambda f: f.id == message_id and f.type == "error",
                                      f"an error answering its {what}", timeout)
    code = (frame.message.get("payload") or {}).get("code")
    if code not in SOCKET_OUTAGE_ERRORS:
        raise AssertionError(f"{device} was told {code!r} about its {what}; expected "
                             f"{' or '.join(SOCKET_OUTAGE_ERRORS)}: {frame.text[:300]}")
    await check_answers_ping(device, timeout)


async def check_answers_ping(device: Device, timeout: float) -> None:
    """The socket is open and answers a ping directly (nothing through the fan-out)."""
    ping_id = await device.ping()
    await device.open_connection().wait_for(lambda f: f.type == "pong" and f.id == ping_id, "a pong to its ping",
                                            timeout, device.last_sent)


async def check_delivers_again(device: Device, seconds: float, timeout: float) -> None:
    """Within ``seconds``, a fence sent from ``device`` comes back through the event fan-out:
    the instance is subscribed again. Fences lost or refused meanwhile are sent again."""
    connection = device.open_connection()
    deadline = asyncio.get_running_loop().time() + seconds
    last = "nothing"
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            await connection.fence(max(0.05, min(0.2, remaining)), backstop=0)
            return
        except AssertionError as error:
            if not connection.is_open:
                raise
            last = str(error)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{device} received nothing through the event fan-out within {seconds:g} s of Redis "
                                 f"coming back (last: {last}); expected the service to subscribe again by itself")


async def check_capacity(instance, count: int, seconds: float = 2.0) -> None:
    """The instance publishes that it takes ``count`` sockets, and holds none of earlier scenarios'."""
    published = (instance.config.get("limits") or {}).get("max_sockets_per_instance")
    if published != count:
        raise AssertionError(f"{instance} publishes limits.max_sockets_per_instance = {published!r}; the scenario "
                             f"says it accepts at most {count}")
    await instance.wait_for_open_count(lambda open_count: open_count == 0, seconds,
                                       "none left from earlier scenarios")


def check_refused_as(outcome, statuses: set[int], code: str) -> None:
    """A handshake refused over HTTP with one of ``statuses`` and the error ``code`` in its body."""
    if isinstance(outcome, RecordedConnection):
        raise AssertionError(f"the handshake of {outcome.owner} was accepted; expected an HTTP "
                             f"{' or '.join(map(str, sorted(statuses)))} {code!r} refusal")
    if not isinstance(outcome, HandshakeRefused):
        raise AssertionError("no handshake was attempted in this scenario")
    try:
        said = json.loads(outcome.body).get("error")
    except (ValueError, AttributeError):
        said = None
    if outcome.status not in statuses or said != code:
        raise AssertionError(f"the handshake was refused with HTTP {outcome.status} {outcome.body[:200]!r}; "
                             f"expected HTTP {' or '.join(map(str, sorted(statuses)))} {code!r}")


def _signed_up(actor: Actor) -> str:
    if actor.user_id is None:
        raise AssertionError(f"{actor.name} has no account in this scenario "
                             f"('Given {actor.name} has an account on the Free plan')")
    return actor.user_id


def _said(answer) -> str:
    if hasattr(answer, "status_code"):
        return f"HTTP {answer.status_code} {answer.text[:200]}"
    if isinstance(answer, AgentRequest):
        frames = answer.device.connection.received(answer.sent_index) if answer.device.connection else []
        return ", ".join(f.type for f in frames if f.id == answer.id) or "nothing"
    return getattr(answer, "text", repr(answer))[:200]
