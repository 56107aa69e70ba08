"""The seam of a resumption (RES-03): an event published between a resuming socket's
subscription and its read of what it missed is in the read and on its way through the
subscription too, on another Redis connection, so it may be heard after the catch-up was
queued. It must reach the client once. Seen in CI as a second agent_completed after a tunnel.

ChatConnection's delivery alone, on a socket that is not served (no network here): the order
of arrival is the test's to choose, which the running service only shows now and then."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from backend.chat import ChatConnection
from backend.history import Resumption


def event(kind: str, entry: str) -> str:
    return json.dumps({"type": kind, "id": "r1", "payload": {}, "seq": f"tag.{entry}"}, separators=(",", ":"))


def resuming_socket() -> ChatConnection:
    socket = ChatConnection.__new__(ChatConnection)  # delivery needs only what is set here
    socket.outbox, socket.closing, socket.last_event_id = asyncio.Queue(), None, "tag.1-0"
    socket._held, socket._caught_up_to = [], None
    socket.state = SimpleNamespace(fanout=SimpleNamespace(history=SimpleNamespace(retention=None)))
    return socket


def sent(socket: ChatConnection) -> list[str]:
    frames = []
    while not socket.outbox.empty():
        frames.append(json.loads(socket.outbox.get_nowait())["type"])
    return frames


def test_an_event_heard_after_the_catch_up_that_the_catch_up_brought_is_not_sent_again():
    socket = resuming_socket()
    socket.deliver(event("agent_thinking", "2-0"))  # heard while catching up: held
    socket.catch_up(Resumption("replay", [event("agent_thinking", "2-0"), event("agent_completed", "3-0")], (3, 0)))
    socket.deliver(event("agent_completed", "3-0"))  # published before the read, heard only now
    socket.deliver(event("agent_started", "4-0"))  # newer: sent
    socket.deliver(json.dumps({"type": "fence", "id": "f"}))  # carries no seq: sent
    assert sent(socket) == ["agent_thinking", "agent_completed", "agent_started", "fence"]


def test_after_a_newer_event_every_event_is_sent():
    socket = resuming_socket()
    socket.catch_up(Resumption("replay", [event("agent_completed", "3-0")], (3, 0)))
    socket.deliver(event("agent_started", "4-0"))
    assert socket._caught_up_to is None, "kept comparing once a newer event had arrived"
    assert sent(socket) == ["agent_completed", "agent_started"]
