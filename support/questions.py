"""Checks the steps ask of what the actors saw. Each failure says who, what, and what was expected."""

from __future__ import annotations

import asyncio
import json

from .actors import AGENT_EVENTS, Actor, AgentRequest, Device, device_type
from .connection import Frame, HandshakeRefused, RecordedConnection
from .leaks import LeakDetector, Party
from .phrases import PUBLISHED_SETTINGS
from .redaction import jwt_claims_unverified

# Words a refusal must not contain: they would tell an attacker why a token failed.
REVEALING_WORDS = ("signature", "expired", "issuer", "audience", "traceback", "exception",
                   "decode", "jwt", "sql", "select ", "postgres", "redis", "claim")


def check_agent_events(request: AgentRequest, events: list[Frame],
                       expected: tuple[str, ...] = AGENT_EVENTS) -> None:
    """The run's events arrived exactly in ``expected`` order, ending with a non-empty answer."""
    seen = [frame.type for frame in events]
    if tuple(seen) != tuple(expected):
        raise AssertionError(
            f"{request.device} asked {request.question!r} and received the events "
            f"{', '.join(seen) or 'none'}; expected {', '.join(expected)} in that order")
    answer = (events[-1].message.get("payload") or {}).get("answer")
    if not isinstance(answer, str) or not answer.strip():
        raise AssertionError(f"the agent's last event for {request.device} carries no answer: {events[-1].text}")
    for frame in events:
        if request.marker not in frame.text and frame.type in ("agent_thinking", "tool_executing", "agent_completed"):
            raise AssertionError(f"the {frame.type} event for {request.device} does not refer to "
                                 f"the question {request.question!r}: {frame.text}")


def check_socket_bound_to(connection, user_id: str, session_id: str | None, who: str) -> None:
    """The socket was accepted and its welcome frame names this user (and session, if given)."""
    if not isinstance(connection, RecordedConnection):
        raise AssertionError(f"no socket was opened for {who}: {connection}")
    welcome = next((f for f in connection.received() if f.type == "connected"), None)
    if welcome is None:
        raise AssertionError(f"{who} received no welcome frame on the socket")
    payload = welcome.message.get("payload") or {}
    expected = {"user_id": user_id} if session_id is None else {"user_id": user_id, "session_id": session_id}
    actual = {key: payload.get(key) for key in expected}
    if actual != expected:
        raise AssertionError(f"the socket of {who} is bound to {actual}; expected {expected}")


async def check_closed_as(connection: RecordedConnection, code: int, timeout: float) -> None:
    """The socket is closed by the service with ``code`` (waiting up to ``timeout`` seconds)."""
    if not await connection.wait_closed(max(timeout, 0)):
        raise AssertionError(f"{connection.owner} is still connected; expected to be disconnected with code {code}")
    if connection.close_code != code:
        raise AssertionError(f"{connection.owner} was disconnected with code {connection.close_code} "
                             f"({connection.close_reason!r}); expected {code}")


async def check_still_usable(device: Device, timeout: float) -> None:
    """The device's socket is open and answers: a ping gets its pong, a fence comes back."""
    connection = device.connection
    if connection is None or not connection.is_open:
        code = connection.close_code if connection else None
        raise AssertionError(f"{device} is not connected (closed with {code})")
    ping_id = connection.next_id("ping")
    since = await connection.send({"type": "ping", "id": ping_id, "payload": {}})
    await connection.wait_for(lambda f: f.type == "pong" and f.id == ping_id, "a pong to its ping", timeout, since)
    await connection.fence(timeout, 0)
    if not connection.is_open:
        raise AssertionError(f"{device} was disconnected with code {connection.close_code}")


async def error_reply(connection: RecordedConnection, code: str, timeout: float, since: int,
                      message_id=None) -> Frame:
    """The error frame with ``code`` that answered a message sent at transcript index ``since``."""
    def matches(frame: Frame) -> bool:
        return frame.type == "error" and (message_id is None or frame.id == message_id)
    frame = await connection.wait_for(matches, f'an error "{code}"', timeout, since)
    actual = (frame.message.get("payload") or {}).get("code")
    if actual != code:
        raise AssertionError(f"{connection.owner} was told {actual!r}; expected {code!r}: {frame.text}")
    return frame


def check_refused(outcome, statuses: set[int]) -> HandshakeRefused:
    """The last handshake was refused over HTTP with one of ``statuses``; no socket opened."""
    if isinstance(outcome, RecordedConnection):
        code = outcome.close_code
        raise AssertionError(
            f"the handshake of {outcome.owner} was accepted (subprotocol {outcome.subprotocol!r}"
            f"{f', later closed with {code}' if code else ''}); expected an HTTP "
            f"{' or '.join(map(str, sorted(statuses)))} refusal before any socket opens")
    if not isinstance(outcome, HandshakeRefused):
        raise AssertionError("no handshake was attempted in this scenario")
    if outcome.status not in statuses:
        raise AssertionError(f"the handshake was refused with HTTP {outcome.status}; expected "
                             f"{' or '.join(map(str, sorted(statuses)))}")
    return outcome


def check_refusal_reveals_nothing(refusal: HandshakeRefused, baseline: HandshakeRefused) -> None:
    """A refusal says no more than the refusal of a handshake without any token."""
    body = refusal.body.lower()
    revealing = [word for word in REVEALING_WORDS if word in body]
    if revealing:
        raise AssertionError(f"the refusal reveals why it refused ({', '.join(revealing)}): {refusal.body[:300]}")
    if refusal.body != baseline.body:
        raise AssertionError(f"the refusal says more than a refusal without a token: "
                             f"{refusal.body[:300]!r} versus {baseline.body[:300]!r}")


def check_nothing_of_run(device: Device, request: AgentRequest) -> None:
    """No frame on ``device``'s socket belongs to ``request``'s run."""
    foreign = [f for f in device.connection.received()
               if f.id == request.id or request.marker in f.text]
    if foreign:
        raise AssertionError(f"{device} received {len(foreign)} frame(s) of the run started on "
                             f"{request.device}; first: {foreign[0].text[:400]}")


def published_setting(document: dict, name: str):
    """The value the config document publishes for the setting a feature names."""
    try:
        path = PUBLISHED_SETTINGS[name]
    except KeyError:
        raise AssertionError(f"unknown setting {name!r}; the features know {', '.join(PUBLISHED_SETTINGS)}") from None
    value = document
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise AssertionError(f"the config document does not publish {name} (no {'.'.join(path)})")
        value = value[key]
    return value


def check_distinct_sessions(actor: Actor, devices: list[str]) -> None:
    sessions = {actor.device(d).tokens.session_id for d in devices}
    if len(sessions) != len(devices):
        raise AssertionError(f"{actor.name}'s {len(devices)} devices share sessions: {sorted(sessions)}")
    for name in devices:
        device = actor.device(name)
        if device.connection is None or not device.connection.is_open:
            raise AssertionError(f"{device} has no open socket")
        check_socket_bound_to(device.connection, device.tokens.user_id, device.tokens.session_id, str(device))


def check_sessions_recorded(actor: Actor, rows) -> None:
    """user_sessions holds one row per device of ``actor``, with that device's type."""
    recorded = {row["id"]: row["device_type"] for row in rows}
    for device in actor.devices.values():
        session = device.tokens.session_id
        if session not in recorded:
            raise AssertionError(f"user_sessions has no row for {device} (session {session}); "
                                 f"it has {recorded}")
        if recorded[session] != device_type(device.name):
            raise AssertionError(f"user_sessions records {device} as {recorded[session]!r}; "
                                 f"expected {device_type(device.name)!r}")


def check_execution_recorded(request: AgentRequest, device: Device, rows, agent: str | None = None,
                             tool: str | None = None) -> None:
    """agent_executions holds exactly one completed row for the request, on ``device``'s session."""
    if len(rows) != 1:
        raise AssertionError(f"agent_executions holds {len(rows)} rows for {request.device}'s question "
                             f"{request.question!r} (request id {request.id}); expected exactly 1")
    row = rows[0]
    problems = []
    if row["status"] != "completed":
        problems.append(f"status is {row['status']!r}, expected 'completed'")
    if row["session_id"] != device.tokens.session_id:
        problems.append(f"it is recorded for session {row['session_id']}, expected {device}'s "
                        f"session {device.tokens.session_id}")
    for column, expected in (("agent", agent), ("tool", tool)):
        if expected is not None and row[column] != expected:
            problems.append(f"its {column} is {row[column]!r}, expected {expected!r}")
    if row["completed_at"] is None or row["completed_at"] < row["started_at"]:
        problems.append(f"its timings are wrong (started {row['started_at']}, completed {row['completed_at']})")
    if problems:
        raise AssertionError(f"the run of {request.question!r} is recorded wrongly: {'; '.join(problems)}")


def check_planted_leak_reported(violations, request: AgentRequest, receiver: Device) -> None:
    """The leak detector reported the planted frame, naming owner, receiver and the frame."""
    if not violations:
        raise AssertionError(f"a frame carrying {request.device}'s private data reached {receiver}, "
                             f"but the leak detector reported nothing")
    report = "\n".join(str(v) for v in violations)
    for needed, what in ((request.device.actor.name, "the owner"), (str(receiver), "the receiver"),
                         (request.marker, "the frame")):
        if needed not in report:
            raise AssertionError(f"the leak detector's report does not name {what} ({needed!r}): {report}")


def check_indistinguishable_refusals(existing: Frame, never_existed: Frame) -> None:
    """Both answers are ``not_found`` errors that differ in nothing but the request id."""
    for frame in (existing, never_existed):
        if frame.type != "error" or (frame.message.get("payload") or {}).get("code") != "not_found":
            raise AssertionError(f"expected the answer 'not_found'; got {frame.text}")
    if existing.message["payload"] != never_existed.message["payload"]:
        raise AssertionError(f"the answer for someone else's thread differs from the answer for a thread that "
                             f"never existed: {existing.message['payload']} versus {never_existed.message['payload']}")


def plan_setting(document: dict, plan: str, setting: str):
    """What the config document publishes for ``setting`` on ``plan``.

    Targets that publish plans (contract v3) are read per plan; others by their one limit.
    """
    plans = document.get("plans")
    if plans is None:
        return published_setting(document, setting)
    if plan not in plans:
        raise AssertionError(f"the service publishes no {plan!r} plan; it has {', '.join(plans)}")
    key = PUBLISHED_SETTINGS[setting][-1]
    if key not in plans[plan]:
        raise AssertionError(f"the service does not publish {setting} for the {plan!r} plan")
    return plans[plan][key]


def check_published(document: dict, setting: str, expected, plan: str | None = None) -> None:
    """The config document publishes ``setting`` (for ``plan``) with the value the business wants."""
    value = published_setting(document, setting) if plan is None else plan_setting(document, plan, setting)
    if value != expected:
        where = f" on the {plan} plan" if plan else ""
        raise AssertionError(f"the service publishes {setting}{where} = {value!r}; the business wants {expected!r}")


SECRET_FIELD_NAMES = ("secret", "password", "private_key", "signing_key")


def check_no_secret(document: dict, secret: str | None) -> None:
    """A published document holds neither the signing secret nor any field named like a secret."""
    text = json.dumps(document)
    if secret and secret in text:
        raise AssertionError("the published document contains the signing secret")
    named = [name for name in _keys(document) if any(word in name.lower() for word in SECRET_FIELD_NAMES)]
    if named:
        raise AssertionError(f"the published document has fields named like secrets: {named}")


def _keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


async def check_tabs_after_limit(tabs, limit: int, timeout: float, backstop: float) -> None:
    """After opening more tabs than the limit: the excess is closed, exactly ``limit`` stay usable."""
    excess = len(tabs) - limit
    deadline = asyncio.get_running_loop().time() + timeout
    while sum(1 for tab in tabs if not tab.is_open) < excess:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    open_tabs = [tab for tab in tabs if tab.is_open]
    await asyncio.gather(*(tab.fence(timeout, 0) for tab in open_tabs))
    await asyncio.sleep(backstop)
    still_open = [tab for tab in tabs if tab.is_open]
    if len(still_open) != limit:
        codes = [tab.close_code for tab in tabs]
        raise AssertionError(f"{len(still_open)} of {len(tabs)} tabs stay connected; expected exactly {limit} "
                             f"(close codes: {codes})")


def check_tokens_bound(device: Device, others: list[Device] = ()) -> None:
    """The device holds an access and a refresh token, the access token bound to its own session."""
    tokens = device.tokens
    if not tokens.access_token or not tokens.refresh_token:
        raise AssertionError(f"{device} holds no {'access' if not tokens.access_token else 'refresh'} token")
    claims = jwt_claims_unverified(tokens.access_token) or {}
    if claims.get("sub") != tokens.user_id or claims.get("sid") != tokens.session_id:
        raise AssertionError(f"the access token of {device} is bound to sub={claims.get('sub')}, "
                             f"sid={claims.get('sid')}; expected {tokens.user_id}, {tokens.session_id}")
    shared = [other for other in others if other.tokens.session_id == tokens.session_id]
    if shared:
        raise AssertionError(f"{device} shares its session with {shared[0]}")


def check_fresh_tokens(device: Device) -> None:
    """After a refresh: new access and refresh tokens, for the same session."""
    old, new = device.previous_tokens[-1], device.tokens
    if new.session_id != old.session_id:
        raise AssertionError(f"the refresh moved {device} to another session ({old.session_id} -> {new.session_id})")
    if new.access_token == old.access_token or new.refresh_token == old.refresh_token:
        raise AssertionError(f"the refresh of {device} did not rotate its tokens")
    check_tokens_bound(device)


def check_nothing_ran(request: AgentRequest, rows) -> None:
    """A refused request caused no agent event, and its run is recorded as refused (if at all)."""
    ran = [f for f in request.device.connection.received(request.sent_index)
           if f.id == request.id and f.type in ("agent_started", "agent_thinking", "tool_executing",
                                                  "tool_completed", "agent_completed")]
    if ran:
        raise AssertionError(f"the refused request of {request.device} still ran: {ran[0].text}")
    if any(row["status"] != "refused" for row in rows):
        raise AssertionError(f"the refused request is recorded with status {[r['status'] for r in rows]}; "
                             f"expected 'refused'")


def check_thread_recorded(row, user_id: str, scope: str, session_id: str | None) -> None:
    """user_threads holds the thread for ``user_id`` with ``scope`` and its session (None: user-wide)."""
    if row is None:
        raise AssertionError("user_threads holds no row for the thread")
    expected = {"user_id": user_id, "scope": scope, "session_id": session_id}
    actual = {key: row[key] for key in expected}
    if actual != expected:
        raise AssertionError(f"user_threads records the thread as {actual}; expected {expected}")


def check_account_recorded(actor: Actor, plan: str, row) -> None:
    """users holds the actor's account, under their e-mail address, on ``plan``."""
    if row is None or row["email"].lower() != actor.email.lower() or row["plan"] != plan:
        raise AssertionError(f"users holds {dict(row) if row else 'no row'} for {actor.name}; "
                             f"expected {actor.email} on the {plan} plan")


def check_http_refusal(answer, what: str, status: int, error: str | None = None) -> None:
    """An HTTP answer is the refusal the contract documents: ``status`` and, if given, ``error``."""
    try:
        code = answer.json().get("error")
    except ValueError:
        code = None
    if answer.status_code != status or (error is not None and code != error):
        expected = f"{status} {error}" if error else str(status)
        raise AssertionError(f"{what} was answered HTTP {answer.status_code} {answer.text[:200]}; expected {expected}")


def check_permission_denied(frame: Frame, who: str, reason: str) -> None:
    """The answer to a tool request is ``permission_denied`` for ``reason`` (plan or role)."""
    payload = (frame.message or {}).get("payload") or {}
    if frame.type != "permission_denied" or payload.get("reason") != reason:
        raise AssertionError(f"{who} expected the tool to be refused because of the {reason}; received {frame.text}")


def check_nothing_reached(detector: LeakDetector, receiver: Party, owner: Party) -> None:
    """The leak detector saw nothing of ``owner``'s on ``receiver``'s sockets.

    A party without a session (a user) covers every device of that user; one with a
    session covers that device only.
    """
    def covers(whole: Party, part: Party) -> bool:
        return whole.user_id == part.user_id and whole.session_id in (None, part.session_id)

    leaks = [v for v in detector.violations if covers(receiver, v.receiver) and covers(owner, v.owner)]
    if leaks:
        raise AssertionError(str(leaks[0]))
