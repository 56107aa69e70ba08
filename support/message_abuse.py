"""Messages that abuse the parser (LIM-05), what each must be answered, and proof the socket stays governed.

Each abuse has the name a feature gives it. It is sent on an open, recorded socket; the
service must answer it as the contract documents (an `error` with a code, or the ordinary
answer to what the message asks), keep the socket, and afterwards still close it by the
connection limit and on sign-out (and, in one scenario, on expiry).
"""

from __future__ import annotations

import json
from typing import Callable

from .connection import Frame, RecordedConnection, deliberately_malformed

FLOOD = 500  # application pings in one flood; they are not counted by the rate limit


def _envelope(kind: str, message_id: str, payload: str) -> str:
    return deliberately_malformed(f'{{"type":"{kind}","id":"{message_id}","payload":{payload}}}')


# name -> the frames to send for a message id
MESSAGE_ABUSES: dict[str, Callable[[str], list[str]]] = {
    "3,000 nested arrays": lambda mid: [deliberately_malformed("[" * 3000 + "]" * 3000)],
    "1,300 nested objects": lambda mid: [deliberately_malformed('{"a":' * 1300 + "1" + "}" * 1300)],
    "a lone high surrogate in a question": lambda mid: [_envelope("chat", mid, '{"text":"Hello \\ud800"}')],
    "a lone low surrogate in a question": lambda mid: [_envelope("chat", mid, '{"text":"\\udc00 there"}')],
    "a lone surrogate in a thread title": lambda mid: [
        _envelope("thread_create", mid, '{"title":"Plans \\udbff","scope":"user"}')],
    "a NUL character in a question": lambda mid: [_envelope("chat", mid, '{"text":"What is\\u0000 this?"}')],
    "a NUL character in a thread title": lambda mid: [
        _envelope("thread_create", mid, '{"title":"Plans\\u0000","scope":"user"}')],
    "a NUL character in the message type": lambda mid: [
        deliberately_malformed(f'{{"type":"ping\\u0000","id":"{mid}","payload":{{}}}}')],
    "a number of 5,000 digits": lambda mid: [_envelope("ping", mid, '{"n":' + "9" * 5000 + "}")],
    "a number too large for any float": lambda mid: [_envelope("ping", mid, '{"n":1e999999}')],
    "a message that names its type twice": lambda mid: [
        deliberately_malformed(f'{{"type":"dance","type":"ping","id":"{mid}","payload":{{}}}}')],
    f"a flood of {FLOOD} pings": lambda mid: [
        json.dumps({"type": "ping", "id": f"{mid}-{n}", "payload": {}}) for n in range(FLOOD)],
}

# What a feature may expect as the answer, besides an error code of the contract.
ORDINARY_ANSWERS = {"a pong": "pong", "a pong to each": "pong", "the agent's full answer": "agent_completed"}


def abuse_frames(attack: str, message_id: str) -> list[str]:
    try:
        return MESSAGE_ABUSES[attack](message_id)
    except KeyError:
        raise ValueError(f"unknown kind of abuse {attack!r}; the features know {', '.join(MESSAGE_ABUSES)}") from None


async def send_abuse(connection: RecordedConnection, attack: str) -> tuple[int, list[str]]:
    """Send the abuse on ``connection``; return where its answers start and the ids it used."""
    message_id = connection.next_id("abuse")
    frames = abuse_frames(attack, message_id)
    since = len(connection.transcript)
    for text in frames:
        await connection.send(text, malformed=True)
    ids = [json.loads(text)["id"] for text in frames] if len(frames) > 1 else [message_id]
    return since, ids


async def check_answered(connection: RecordedConnection, attack: str, answer: str, since: int,
                         ids: list[str], timeout: float) -> None:
    """The abuse was answered with ``answer`` (an error code, or an ordinary answer) and the socket is open."""
    kind = ORDINARY_ANSWERS.get(answer)
    last = ids[-1]
    frame = await connection.wait_for(
        lambda f: f.id == last or (f.type == "error" and f.id in (*ids, None)), f"the answer to {attack}",
        timeout, since)
    if kind is None:
        code = (frame.message.get("payload") or {}).get("code") if frame.type == "error" else None
        if code != answer:
            raise AssertionError(f"{connection.owner} sent {attack} and was answered {frame.text[:300]}; "
                                 f"expected an error {answer!r}")
    else:
        if frame.type != kind:
            frame = await connection.wait_for(lambda f: f.id == last and f.type == kind, answer, timeout, since)
        answered = {f.id for f in connection.received(since) if f.type == kind}
        missing = [message_id for message_id in ids if message_id not in answered]
        if missing:
            raise AssertionError(f"{connection.owner} sent {attack}; {len(missing)} of {len(ids)} got no {answer} "
                                 f"(first: {missing[0]})")
    if not connection.is_open:
        raise AssertionError(f"{connection.owner} sent {attack}, and the service closed the socket "
                             f"({connection.close_code}); an answered error leaves it open")


async def check_still_governed(actor, timeout: float) -> None:
    """The actor's sockets, all of which were sent the abuse, are still closed by the rules.

    The connection limit: one socket more than her plan allows, opened now, closes the
    oldest with 4008. Sign-out: the next oldest's session is signed out, which closes it
    with 4009.
    """
    from .questions import check_closed_as

    devices = sorted(actor.connected_devices(), key=lambda d: d.connection.transcript[0].at)
    if len(devices) < 2:
        raise AssertionError(f"this check needs two of {actor.name}'s devices connected, the older first "
                             f"('Given {actor.name} is connected from her tablet' and then '... her phone')")
    oldest, next_oldest = devices[0], devices[1]
    plan = (actor.cast.instance.config.get("plans") or {}).get(actor.plan) or actor.cast.instance.config["limits"]
    extra = plan["max_connections_per_user"] - len(devices) + 1
    for _ in range(extra):
        await actor.connect("desktop app")
    try:
        await check_closed_as(oldest.connection, 4008, timeout)
    except AssertionError as failed:
        raise AssertionError(f"after the abuse, the connection limit no longer governs {oldest}: {failed}") from None
    await actor.sign_out(next_oldest.name)
    try:
        await check_closed_as(next_oldest.connection, 4009, timeout)
    except AssertionError as failed:
        raise AssertionError(f"after the abuse, signing out no longer closes {next_oldest}: {failed}") from None


async def send_every_abuse(connection: RecordedConnection, timeout: float) -> None:
    """Every abuse of the catalogue on one socket, each awaited, as a hostile client would send them."""
    for attack in MESSAGE_ABUSES:
        since, ids = await send_abuse(connection, attack)
        last = ids[-1]
        await connection.wait_for(lambda f: f.id == last or (f.type == "error" and f.id in (last, None)),
                                  f"an answer to {attack}", timeout, since)
