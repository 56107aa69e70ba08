"""Checks the steps ask of what the actors saw. Each failure says who, what, and what was expected."""

from __future__ import annotations

import asyncio
import base64
import json
import time

from .actors import AGENT_EVENTS, Actor, AgentRequest, Device
from .phrases import device_type
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


def secret_spellings(secret: str) -> dict[str, str]:
    """The signing secret as a document could carry it: raw, base64, base64url (padded or not, as a
    JWK's ``k``), hex in either case."""
    raw = secret.encode()
    standard, urlsafe = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    return {"raw": secret, "base64": standard, "base64 without padding": standard.rstrip("="),
            "base64url": urlsafe, "base64url without padding (a JWK's k)": urlsafe.rstrip("="),
            "hex": raw.hex(), "upper-case hex": raw.hex().upper()}


def check_no_secret(document: dict, secret: str | None) -> None:
    """A published document holds neither the signing secret, in any encoding, nor a field named like a secret."""
    text = json.dumps(document)
    compact = text.replace("\\", "")
    for spelling, value in (secret_spellings(secret) if secret else {}).items():
        if value in text or value in compact:
            raise AssertionError(f"the published document contains the signing secret ({spelling})")
    keys = [k for k in _jwk_keys(document)]
    if keys:
        raise AssertionError(f"the published document holds a symmetric JSON Web Key ({keys[0]})")
    named = [name for name in _keys(document) if any(word in name.lower() for word in SECRET_FIELD_NAMES)]
    if named:
        raise AssertionError(f"the published document has fields named like secrets: {named}")


def _jwk_keys(value):
    """Symmetric JWKs (``kty: oct`` with a ``k``) anywhere in a document: a published key is a secret."""
    if isinstance(value, dict):
        if value.get("kty") == "oct" and "k" in value:
            yield f"kid={value.get('kid')!r}"
        for inner in value.values():
            yield from _jwk_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _jwk_keys(inner)


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


# -- checks the steps delegate to (one place each, unit-testable without behave) ----------

def check_mode(config: dict, mode: str) -> None:
    published = config.get("mode")
    if published != mode:
        raise AssertionError(f"the service's config document says mode {published!r}; expected {mode!r}")


def check_published_marker(handshake, config: dict) -> None:
    """The service selected the marker protocol its config document publishes, never the token."""
    marker = (config.get("auth") or {}).get("subprotocol_marker")
    if not marker:
        raise AssertionError("the config document publishes no auth.subprotocol_marker")
    if not isinstance(handshake, RecordedConnection):
        raise AssertionError(f"no socket was opened: {handshake}")
    if handshake.subprotocol != marker:
        raise AssertionError(f"the service selected the subprotocol {handshake.subprotocol!r} "
                             f"for {handshake.owner}; expected exactly {marker!r}")


def check_nothing_opened(handshake, connections) -> None:
    """The last handshake was refused, and no socket of the scenario is open or was accepted."""
    check_refused(handshake, {400, 401, 403, 404, 414, 431})
    opened = [c for c in connections if c.subprotocol or c.is_open]
    if opened:
        raise AssertionError(f"a socket was opened for {opened[0].owner}")


async def check_closed_after_expiry(device: Device, code: int, seconds: float, now: float) -> None:
    """The device's socket was closed with ``code`` within ``seconds`` of its token's expiry, not before."""
    expiry = device.token_expiry
    connection = device.connection
    await check_closed_as(connection, code, timeout=expiry + seconds + 1 - now)
    late = connection.closed_at - expiry
    if late > seconds:
        raise AssertionError(f"{device} was disconnected {late:.1f} s after its token expired; expected within {seconds} s")
    if late < -0.5:
        raise AssertionError(f"{device} was disconnected {-late:.1f} s before its token expired")


async def check_outlived(device: Device, seconds: float, now: float, timeout: float) -> None:
    """The renewed socket is still open ``seconds`` after the old token's expiry, and answers a fence."""
    connection = device.open_connection()
    if await connection.wait_closed(device.token_expiry + seconds - now):
        raise AssertionError(f"{device} was disconnected with code {connection.close_code} although it "
                             f"renewed its token before the old one expired")
    await connection.fence(timeout, 0)


async def check_own_answers(actors: list[Actor]) -> None:
    """Every question each actor asked is answered in full on the device that asked it."""
    asked = [(actor, request) for actor in actors for request in actor.requests]
    if not asked:
        raise AssertionError("nobody of the group asked anything: this step needs 'When each of them asks their "
                             "agent a private question' earlier in the scenario")
    answers = await asyncio.gather(*(actor.answer_to(request) for actor, request in asked))
    for (actor, request), events in zip(asked, answers):
        check_agent_events(request, events)


async def check_only_on_session_channel(request: AgentRequest, device: Device, fanout, timeout: float) -> None:
    """The run's events travelled on the contract's channel of ``device``'s session and on no other channel."""
    from .fanout import session_channel

    # The fence follows the run's events on the same path: once the recorder has seen it,
    # it has seen every publication of the run.
    fence_id = await request.device.open_connection().fence(timeout, 0)
    await fanout.wait_until_seen(fence_id, timeout)
    channels = fanout.channels_carrying(request.marker)
    expected = {session_channel(device.tokens.session_id)}
    if channels != expected:
        raise AssertionError(f"the events of {request.device}'s run travelled on {sorted(channels) or 'no channel'}; "
                             f"expected only {sorted(expected)}")


async def check_runs_kept_to_devices(actor: Actor, runs_each: int, cast, backstop: float) -> None:
    """Each device asked ``runs_each`` runs, received each in full, and nothing of another device's runs."""
    per_device = {device.name: [r for r in actor.requests if r.device is device] for device in actor.devices.values()}
    wrong = {name: len(asked) for name, asked in per_device.items() if len(asked) != runs_each}
    if wrong:
        raise AssertionError(f"the sentence speaks of {runs_each} runs per device, but {actor.name}'s devices "
                             f"asked {wrong}")
    answers = await asyncio.gather(*(actor.answer_to(request) for request in actor.requests))
    for request, events in zip(actor.requests, answers):
        check_agent_events(request, events)
    await cast.fence_all(backstop)
    for device in actor.devices.values():
        for request in actor.requests:
            if request.device is not device:
                check_nothing_of_run(device, request)


def check_thread_readable(device: Device, answer: Frame) -> None:
    if answer.type != "thread":
        raise AssertionError(f"{device} could not read the thread: {answer.text}")


def check_thread_unknown(device: Device, answer: Frame) -> None:
    if answer.type != "error" or (answer.message.get("payload") or {}).get("code") != "not_found":
        raise AssertionError(f"{device} should not see the thread; it was answered {answer.text}")


async def check_thread_message(device: Device, thread_id: str, text: str, timeout: float) -> None:
    await device.received_on().wait_for(
        lambda f: f.type == "thread_message" and text in f.text and thread_id in f.text,
        f"{text!r} in the thread", timeout)


def check_nothing_recorded(actor: Actor, runs) -> None:
    if runs:
        raise AssertionError(f"agent_executions holds {len(runs)} run(s) for {actor.name}; expected none: {runs[0]}")


def check_session_revoked(device: Device, rows) -> None:
    """user_sessions records the device's session as revoked (revoked_at set)."""
    row = next((r for r in rows if r["id"] == device.tokens.session_id), None)
    if row is None:
        raise AssertionError(f"user_sessions holds no row for the session of {device}")
    if row["revoked_at"] is None:
        raise AssertionError(f"user_sessions still records the session of {device} as live (revoked_at is null)")


def check_token_lifetime(tokens, config: dict) -> None:
    """The access token lives exactly as long as the service advertises (exp - iat, and expires_in)."""
    advertised = (config.get("auth") or {}).get("access_token_ttl_seconds")
    claims = jwt_claims_unverified(tokens.access_token) or {}
    if advertised is None:
        raise AssertionError("the config document publishes no auth.access_token_ttl_seconds")
    lifetime = claims.get("exp", 0) - claims.get("iat", 0)
    if lifetime != advertised or tokens.expires_in != advertised:
        raise AssertionError(f"the service issued an access token living {lifetime} s (expires_in "
                             f"{tokens.expires_in}); it advertises {advertised} s")


async def tool_answer(request: AgentRequest, timeout: float) -> Frame:
    return await request.device.received_on().wait_for(
        lambda f: f.id == request.id and f.type in ("permission_denied", "agent_completed", "error"),
        "the answer to the tool request", timeout, request.sent_index)


LIMIT_SETTINGS = {"rate_limited": "messages per minute", "usage_limit_reached": "agent runs per day"}
UNCOUNTED = ("ping", "fence")


def allowance_left(actor: Actor, code: str, limit: int, burst_start: float) -> int:
    """What is left of the actor's allowance when the burst began (contract section 5 and 12)."""
    if code == "rate_limited":
        # Counted: every client message but ping and fence, on any of the user's sockets, in 60 s.
        counted = 0
        for device in actor.devices.values():
            for connection in device.tabs:
                for frame in connection.transcript:
                    if frame.direction == "sent" and burst_start - 60 < frame.at < burst_start:
                        counted += (frame.message or {}).get("type") not in UNCOUNTED
        return limit - counted
    earlier = [r for r in actor.requests if r.at < burst_start]
    return limit - len(earlier)


async def check_refused_past_limit(actor: Actor, code: str, stated_limit: int | None, timeout: float,
                                   expected_refusals: int | None = None) -> None:
    """Within the allowance every question is answered in full; each one past it is refused as ``code``
    with a retry hint; the socket stays open.

    On one device the first refused is the one just past the limit. Over several devices the
    service sees their messages interleaved, so exactly as many as are past the limit are
    refused in all, and on each device the refused ones are its last.
    """
    burst = actor.burst
    if code not in LIMIT_SETTINGS:
        raise AssertionError(f"unknown limit {code!r}: the features know {', '.join(LIMIT_SETTINGS)}")
    limit = stated_limit if stated_limit is not None else plan_setting(actor.cast.instance.config, actor.plan,
                                                                       LIMIT_SETTINGS[code])
    allowance = max(allowance_left(actor, code, limit, burst[0].at), 0)
    past = len(burst) - allowance
    if past <= 0:
        raise AssertionError(f"{actor.name} asked {len(burst)} questions with {allowance} left of a limit of "
                             f"{limit}: none is past the limit, so none can be refused")
    if expected_refusals is not None and expected_refusals != past:
        raise AssertionError(f"the sentence says {expected_refusals} are refused, but {len(burst)} questions with "
                             f"{allowance} left of a limit of {limit} put {past} past it")

    async def first_answer(request: AgentRequest) -> Frame:
        return await request.device.received_on().wait_for(
            lambda f: f.id == request.id and f.type in ("error", *AGENT_EVENTS),
            f"the answer to {request.question!r}", timeout, request.sent_index)

    firsts = await asyncio.gather(*(first_answer(request) for request in burst))
    refused = [frame.type == "error" for frame in firsts]
    where = f"{actor.name}'s {len(burst)} questions ({allowance} left of a limit of {limit})"
    if sum(refused) != past:
        raise AssertionError(f"{sum(refused)} of {where} were refused; expected the {past} past the limit")
    devices = {request.device.name: request.device for request in burst}
    for name in devices:
        mine = [was for was, request in zip(refused, burst) if request.device.name == name]
        if mine != sorted(mine):
            first = mine.index(True) + 1
            raise AssertionError(f"on {actor.name}'s {name}, question {first} of {len(mine)} was refused while a "
                                 f"later one was answered; the refused must be the last")
    for number, (request, frame, was) in enumerate(zip(burst, firsts, refused), 1):
        if not was:
            continue
        actual = (frame.message.get("payload") or {}).get("code")
        if actual != code:
            raise AssertionError(f"question {number} of {where} was refused as {actual!r}; expected {code!r}: "
                                 f"{frame.text[:300]}")
        retry_after = (frame.message.get("payload") or {}).get("retry_after_seconds")
        if not isinstance(retry_after, (int, float)) or retry_after <= 0:
            raise AssertionError(f"the refusal of question {number} gives no usable retry-after hint: {frame.text}")
    within = [request for request, was in zip(burst, refused) if not was]
    answers = await asyncio.gather(*(actor.answer_to(request) for request in within))
    for request, events in zip(within, answers):
        check_agent_events(request, events)
    for device in devices.values():
        if not device.connection.is_open:
            raise AssertionError(f"{device} was disconnected ({device.connection.close_code}) by the limit; "
                                 f"expected its socket to stay open")


def check_closed_with(closed, code: int) -> None:
    wrong = [tab for tab in closed if tab.close_code != code]
    if not closed or wrong:
        raise AssertionError(f"{len(wrong)} of {len(closed)} closed tabs were closed with another code than "
                             f"{code}: {[tab.close_code for tab in wrong]}")


def check_heartbeats(device: Device, client, interval: float) -> None:
    if not client.pings:
        waited = (client.closed_at or time.monotonic()) - client.opened_at
        raise AssertionError(f"{device} received no heartbeat in {waited:.1f} s; "
                             f"the service advertises one every {interval} s")
    gaps = [b - a for a, b in zip([client.opened_at] + client.pings, client.pings)]
    if [gap for gap in gaps if gap > interval * 1.5 + 0.25]:
        raise AssertionError(f"heartbeats came {', '.join(f'{g:.2f}' for g in gaps)} s apart; "
                             f"the service advertises one every {interval} s")


def check_heartbeat_timeout(device: Device, client, timeout: float) -> None:
    if client.closed_at is None:
        raise AssertionError(f"{device} never answered a heartbeat, and the service still had not "
                             f"disconnected it {time.monotonic() - client.opened_at:.1f} s later "
                             f"(advertised timeout {timeout} s)")
    if not client.pings:
        raise AssertionError(f"{device} was disconnected without ever being sent a heartbeat")
    waited = client.closed_at - client.pings[0]
    if waited > timeout * 1.5 + 0.5:
        raise AssertionError(f"{device} stayed connected {waited:.1f} s after its first unanswered "
                             f"heartbeat; the service advertises a timeout of {timeout} s")


def check_dropped_in_time(dropped_after: float | None, limit: float) -> None:
    if dropped_after is None or dropped_after > limit + 1:
        shown = "was still open" if dropped_after is None else f"was dropped after {dropped_after:.1f} s"
        raise AssertionError(f"the unfinished connection {shown}; the service advertises a handshake timeout of {limit} s")


def check_memory_growth(before: int, after: int, megabytes: int) -> None:
    grown = (after - before) / 1024 / 1024
    print(f"memory: {before / 2**20:.1f} MB before, {after / 2**20:.1f} MB after ({grown:+.1f} MB)")
    if grown >= megabytes:
        raise AssertionError(f"the service's memory grew by {grown:.1f} MB; expected less than {megabytes} MB")


def check_crowd_connected(crowd) -> None:
    people, _ = crowd
    failed = [o for o in people if not isinstance(o, RecordedConnection) or not o.is_open]
    if failed:
        raise AssertionError(f"{len(failed)} of {len(people)} people could not connect; first: {failed[0]!r}")


def check_crowd_refused(crowd, statuses: set[int]) -> None:
    for outcome in crowd[1]:
        check_refused(outcome, statuses)


def check_no_server_errors(crowd) -> None:
    people, forged = crowd
    bad = [o for o in people + forged
           if isinstance(o, BaseException) and not (isinstance(o, HandshakeRefused) and o.status < 500)
           or isinstance(o, RecordedConnection) and o.close_code == 1011]
    if bad:
        raise AssertionError(f"{len(bad)} handshakes failed with a server error or 1011; first: {bad[0]!r}")


async def check_breaker_open(instance, store, actor: Actor) -> None:
    """The instance reports its identity-store breaker open and no longer tries the store."""
    health = await instance.security_health(any_status=True)
    state = (health.get("identity_store") or {}).get("state")
    if state != "open":
        raise AssertionError(f"the service reports its identity store breaker as {state!r}; expected 'open': {health}")
    attempts = store.attempts
    for _ in range(3):
        check_refused(await actor.try_connect(actor.any_device_name(), "bearer header"), {503})
    if store.attempts != attempts:
        raise AssertionError(f"the service tried the identity store {store.attempts - attempts} more times "
                             f"while its breaker was open")


async def connect_after_recovery(actor: Actor, device: str, instance) -> None:
    """The actor connects again within the advertised cool-down (plus 3 s) of the store's return."""
    cooldown = instance.config.get("timeouts", {}).get("identity_store_cooldown_seconds", 30)
    deadline = asyncio.get_running_loop().time() + cooldown + 3
    while True:
        outcome = await actor.try_connect(device, "bearer header")
        if isinstance(outcome, RecordedConnection):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{actor.name} still cannot connect {cooldown + 3:g} s after the identity store "
                                 f"came back: {outcome}")
        await asyncio.sleep(0.1)


def check_settings_published(document: dict, settings: list[str]) -> None:
    for setting in settings:
        value = published_setting(document, setting)
        if value in (None, "", [], {}):
            raise AssertionError(f"the config document publishes an empty {setting}: {value!r}")


def check_carriers_offered(document: dict, carriers: list[str]) -> None:
    from .phrases import CARRIER_METHODS

    unknown = [c for c in carriers if c not in CARRIER_METHODS]
    if unknown:
        raise AssertionError(f"unknown carrier {unknown[0]!r}: the features know {', '.join(CARRIER_METHODS)}")
    methods = published_setting(document, "authentication methods")
    missing = [c for c in carriers if CARRIER_METHODS[c] not in methods]
    if missing:
        raise AssertionError(f"the config document does not offer {', '.join(missing)}; it offers {methods}")


def check_mode_published(document: dict) -> None:
    mode = published_setting(document, "mode")
    if mode not in ("development", "production"):
        raise AssertionError(f"the config document gives the mode {mode!r}; expected development or production")


def check_heartbeat_within(document: dict, seconds: float) -> None:
    interval = published_setting(document, "heartbeat interval")
    if not 0 < interval <= seconds:
        raise AssertionError(f"the service sends a heartbeat every {interval} s; the business wants at most {seconds} s")


def check_security_fields(document: dict, fields) -> None:
    for name in fields:
        if not document.get(name):
            raise AssertionError(f"the security document has no {name}: {document}")


def check_healthy(health: dict, parts) -> None:
    unhealthy = {part: health.get(part) for part in parts if health.get(part) != "ok"}
    if unhealthy:
        raise AssertionError(f"the security health reports {unhealthy}: {health}")


def check_tools_include(client, tool: str) -> None:
    names = client.tool_names()
    if tool not in names:
        raise AssertionError(f"the tools list {names}; expected it to include {tool!r}: {client.last_reply}")


def check_tool_answer_quotes(client, text: str) -> None:
    reply = client.last_reply
    content = (reply.get("result") or {}).get("content") or []
    if not any(text in str(part.get("text", "")) for part in content):
        raise AssertionError(f"the tool's answer does not quote {text!r}: {reply}")


def check_rpc_error(frame: Frame, code: int) -> None:
    reply = frame.json
    error = reply.get("error") if isinstance(reply, dict) else None
    if not error or error.get("code") != code or reply.get("jsonrpc") != "2.0":
        raise AssertionError(f"expected a JSON-RPC 2.0 error {code}; received {frame.text}")


async def check_batch_answered(client, calls: int) -> None:
    connection, since = client.connection, client.sent_at
    if calls != len(client.batch_ids):
        raise AssertionError(f"the batch held {len(client.batch_ids)} calls; the sentence speaks of {calls}")
    reply = await connection.wait_for(lambda f: isinstance(f.json, list), "the batch reply", client.timeout, since)
    ids = {item.get("id") for item in reply.json}
    if ids != client.batch_ids or len(reply.json) != calls:
        raise AssertionError(f"the batch reply answers {sorted(ids, key=str)}; expected exactly "
                             f"{sorted(client.batch_ids)}: {reply.text}")
    await connection.call("ping", timeout=client.timeout)  # anything the notification caused is before this
    extra = [f for f in connection.received(since)
             if f is not reply and not (isinstance(f.json, dict) and f.json.get("id") is not None)]
    if extra:
        raise AssertionError(f"the notification in the batch was answered: {extra[0].text}")


async def check_first_reply_answers_ping(client) -> None:
    first = await client.connection.wait_for(lambda f: f.json is not None, "a reply", client.timeout, client.sent_at)
    if not isinstance(first.json, dict) or first.json.get("id") != client.ping_id:
        raise AssertionError(f"the notification was answered: {first.text}")


def check_error_names(frame: Frame, culprit: str) -> None:
    payload = frame.message.get("payload") or {}
    if culprit not in (payload.get("type"), payload.get("field")) and culprit not in str(payload.get("message")):
        raise AssertionError(f"the error does not name {culprit!r}: {frame.text}")
