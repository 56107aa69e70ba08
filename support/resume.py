"""Picking up after a lost connection (docs/contract.md, section 6a): the abilities and their checks.

A device loses its connection "in a tunnel": right after the agent's first event arrives,
nothing more is received, and the socket is closed behind it (after the messages the device
had already sent, so the service still acts on all of them). The device comes back with the sequence id (``seq``) of the last event it
saw, and the service owes it every event it missed, once and in order, then the live ones;
or, beyond what the service keeps (its config document's ``resume``), an explicit gap
signal; and to anyone holding another session's id, nothing but "not found".

The service's ids are opaque to the suite: it only hands them back and compares them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .actors import AGENT_EVENTS, Actor, AgentRequest, Device
from .connection import Frame, RecordedConnection
from .instances import Instance

GAP = "resume_gap"
NOT_FOUND = "not_found"


def sequence_id(frame: Frame) -> str | None:
    """The frame's sequence id, or None for a frame that carries none."""
    value = (frame.message or {}).get("seq")
    return value if isinstance(value, str) else None


def retained_events(instance: Instance) -> int:
    """How many of a conversation's events the instance says it keeps for resuming."""
    published = (instance.config.get("resume") or {}).get("retained_events")
    if not isinstance(published, int) or published < 1:
        raise AssertionError(f"{instance} publishes no resume.retained_events in its config document "
                             f"(docs/contract.md, section 7); got {instance.config.get('resume')!r}")
    return published


@dataclass
class Tunnel:
    """A connection lost while the agent answered: the questions asked, and what arrived before."""

    device: Device
    requests: list[AgentRequest]
    connection: RecordedConnection  # the lost one

    @property
    def request(self) -> AgentRequest:
        return self.requests[0]

    def seen(self, request: AgentRequest) -> list[Frame]:
        return [f for f in self.connection.received() if f.id == request.id]

    @property
    def last_event_id(self) -> str:
        """The sequence id of the last event the device saw before the link went."""
        ids = [sequence_id(f) for f in self.connection.received() if sequence_id(f) is not None]
        if not ids:
            raise AssertionError(f"{self.device} received the agent's events without a sequence id (\"seq\"); "
                                 f"expected every event of its session to carry one (docs/contract.md, section 6a)")
        return ids[-1]

    @property
    def missed(self) -> int:
        """Events of the questions asked that never reached the device."""
        return len(self.requests) * len(AGENT_EVENTS) - sum(len(self.seen(r)) for r in self.requests)


async def lose_connection_while_answering(actor: Actor, device: str, questions: list[str]) -> Tunnel:
    """Ask ``questions`` from ``device``; lose its link right after the first agent event that
    follows the last of them. Returns once the link is gone."""
    entry = actor.device(device)
    connection = entry.open_connection()
    asked: list[AgentRequest] = []
    # Only once every question is out, or the next one could not be sent.
    connection.lose_after(lambda f: len(asked) == len(questions) and f.type in AGENT_EVENTS)
    for question in questions:
        asked.append(await actor.ask(device, question))
    if not await connection.wait_closed(actor.cast.timeout):
        raise AssertionError(f"{entry} asked {asked[0].question!r} and received no agent event within "
                             f"{actor.cast.timeout:g} s, so it had nothing to lose its connection in the middle of")
    entry.tunnel = Tunnel(entry, asked, connection)
    return entry.tunnel


async def lose_connection_while_outrun(actor: Actor, device: str, database, timeout: float) -> Tunnel:
    """Lose the link while the agent answers more questions than the service keeps events for;
    return once the last of them is recorded completed (so the oldest missed events are gone)."""
    retained = retained_events(actor.cast.instance)
    # One question more than it takes, so a few events seen before the link goes change nothing.
    count = retained // len(AGENT_EVENTS) + 2
    tunnel = await lose_connection_while_answering(
        actor, device, [f"Tell me about part {number} of my order, please" for number in range(1, count + 1)])
    if tunnel.missed <= retained:
        raise AssertionError(f"{tunnel.device} saw too much before its link went: it missed {tunnel.missed} events, "
                             f"not more than the {retained} the service keeps")
    last = tunnel.requests[-1]
    deadline = asyncio.get_running_loop().time() + timeout * count  # each question its own event timeout
    while not any(row["status"] == "completed" for row in await database.executions_for(actor.user_id, last.id)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the agent's run for {last.question!r} of {tunnel.device} was not recorded "
                                 f"completed within {timeout * count:g} s")
        await asyncio.sleep(0.05)
    return tunnel


async def reconnect_where_left_off(actor: Actor, device: str, instance: Instance | None = None) -> RecordedConnection:
    """The device comes back and asks for everything after the last event it saw."""
    entry = actor.device(device)
    return await actor.connect(device, instance=instance, last_event_id=entry.tunnel.last_event_id)


async def connect_where_other_left_off(actor: Actor, device: str, other: Device) -> RecordedConnection:
    """Connect from ``device`` asking for what came after the last event ``other`` saw.

    Then a fence: it comes after whatever the service sent in answer (docs/contract.md,
    section 6a), so all of that has arrived, and met the leak detector, when the step ends.
    """
    connection = await actor.connect(device, last_event_id=other.tunnel.last_event_id)
    await connection.fence(actor.cast.timeout, backstop=0)
    return connection


async def _first_answer(connection: RecordedConnection, who: str, what: str, timeout: float) -> Frame:
    """The first frame after the welcome that answers a resumption: an event, a gap or an error."""
    return await connection.wait_for(
        lambda f: f.type in (GAP, "error") or sequence_id(f) is not None,
        f"an answer to its request to {what}", timeout)


async def check_rest_of_answer(tunnel: Tunnel, timeout: float) -> None:
    """Every event the device missed arrived on its new socket, once and in order, nothing before them."""
    resumed, request = tunnel.device.open_connection(), tunnel.request
    first = await _first_answer(resumed, str(tunnel.device), "pick up where it left off", timeout)
    if first.type == GAP or first.type == "error":
        raise AssertionError(f"{tunnel.device} reconnected after the last event it saw and was answered "
                             f"{first.text[:300]}; expected the rest of the answer to {request.question!r}")
    await resumed.wait_for(lambda f: f.id == request.id and f.type in ("agent_completed", "error"),
                           f"the end of the answer to {request.question!r}", timeout)
    seen = [f.type for f in tunnel.seen(request)]
    rest = [f for f in resumed.received() if f.id == request.id]
    expected = list(AGENT_EVENTS[len(seen):])
    if seen + [f.type for f in rest] != list(AGENT_EVENTS):
        raise AssertionError(
            f"{tunnel.device} saw {', '.join(seen)} before it lost its connection, and after reconnecting "
            f"received {', '.join(f.type for f in rest) or 'nothing'}; expected the rest, "
            f"{', '.join(expected)}, once each and in that order")
    ids = [sequence_id(f) for f in rest]
    if tunnel.last_event_id in ids or len(set(ids)) != len(ids) or None in ids:
        raise AssertionError(f"the events {tunnel.device} received after reconnecting carry the sequence ids "
                             f"{ids}; expected new ones, each once, after {tunnel.last_event_id!r}")


async def check_told_of_gap(tunnel: Tunnel, timeout: float) -> None:
    """Beyond what the service keeps: an explicit gap signal, before any event, never a silent hole."""
    resumed = tunnel.device.open_connection()
    first = await _first_answer(resumed, str(tunnel.device), "pick up where it left off", timeout)
    if first.type != GAP:
        replayed = [f for f in resumed.received() if sequence_id(f) is not None]
        raise AssertionError(
            f"{tunnel.device} missed {tunnel.missed} events, more than the service keeps, and after reconnecting "
            f"was answered {first.text[:200]} ({len(replayed)} event(s) so far); expected a \"{GAP}\" before any "
            f"event, not a silent hole")


async def check_nothing_to_pick_up(connection: RecordedConnection, other: Tunnel, timeout: float) -> None:
    """Another session's place is "not found", and the socket carries none of that session's events."""
    first = await _first_answer(connection, str(connection.owner), f"pick up where {other.device} left off",
                                timeout)
    code = ((first.message or {}).get("payload") or {}).get("code")
    if first.type != "error" or code != NOT_FOUND:
        raise AssertionError(f"{connection.owner} asked to pick up where {other.device} left off and was answered "
                             f"{first.text[:300]}; expected an error \"{NOT_FOUND}\"")


async def check_none_of_the_events(connection: RecordedConnection, other: Tunnel, timeout: float,
                                   backstop: float) -> None:
    """Once the delivery path is drained, the socket holds no event of the other device's questions."""
    await connection.fence(timeout, backstop)
    ids = {request.id for request in other.requests}
    theirs = [f for f in connection.received() if f.id in ids]
    if theirs:
        raise AssertionError(f"{connection.owner} received {len(theirs)} event(s) of the questions {other.device} "
                             f"asked; first: {theirs[0].text[:300]}")
