"""Checks the steps ask of what the actors saw. Each failure says who, what, and what was expected."""

from __future__ import annotations

from .actors import AGENT_EVENTS, Actor, AgentRequest, Device, device_type
from .connection import Frame, HandshakeRefused, RecordedConnection
from .phrases import PUBLISHED_SETTINGS

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


def check_socket_bound_to(connection: RecordedConnection, device: Device) -> None:
    """The welcome frame names the device's user and session."""
    welcome = next((f for f in connection.received() if f.type == "connected"), None)
    if welcome is None:
        raise AssertionError(f"{device} received no welcome frame on its socket")
    payload = welcome.message.get("payload") or {}
    expected = {"user_id": device.tokens.user_id, "session_id": device.tokens.session_id}
    actual = {key: payload.get(key) for key in expected}
    if actual != expected:
        raise AssertionError(f"the socket of {device} is bound to {actual}; expected {expected}")


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
        check_socket_bound_to(device.connection, device)


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


def check_execution_recorded(request: AgentRequest, device: Device, rows) -> None:
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
