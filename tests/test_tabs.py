"""A device's tabs are the sockets it opened: a refused handshake is not one of them.

Against a bare loopback server that accepts Alice's laptop once and refuses every later
handshake with 401: after the refusal, the laptop still has its one open tab, and its
socket is still the one that was accepted. A refused attempt counted as a tab made a
later "every tab on Alice's laptop is disconnected" wait for a close on a socket that
never opened, and a later step on the laptop find it "closed".
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

from websockets.asyncio.server import serve

from support.accounts import SessionTokens
from support.actors import Cast
from support.connection import HandshakeRefused
from support.instances import Instance
from support.leaks import LeakDetector
from support.redaction import Redactor

USER, SESSION = "0b7e7c59-6a3c-4a0c-9d55-5b4d8d1d2a10", "5d0f4c7e-51b8-4a52-a3a4-2f0f8b9f2c11"


async def a_refused_handshake_leaves_the_open_tab_in_place() -> None:
    accepted = 0

    def once(connection, request):
        nonlocal accepted
        if accepted:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "authentication required\n")
        accepted += 1
        return None

    async def welcome(connection):
        await connection.send(json.dumps({"type": "connected", "id": None,
                                          "payload": {"user_id": USER, "session_id": SESSION}}))
        await connection.wait_closed()

    async with serve(welcome, "127.0.0.1", 0, process_request=once) as server:
        port = server.sockets[0].getsockname()[1]
        instance = Instance("bare", f"http://127.0.0.1:{port}", api=None, config={}, security={})
        cast = Cast([instance], LeakDetector(), Redactor(), timeout=5, run_tag="tabs")
        alice = cast.actor("Alice")
        laptop = alice._adopt("laptop", SessionTokens(USER, SESSION, "access-token", "refresh-token", 900))
        first = await alice.connect("laptop")
        refusal = await alice.try_connect("laptop", "bearer header")
        try:
            assert isinstance(refusal, HandshakeRefused), refusal
            assert laptop.tabs == [first], f"the laptop's tabs are {laptop.tabs}; expected only the accepted socket"
            assert laptop.connection is first and first.is_open
            assert laptop.open_connection() is first
            assert len(cast.connections) == 2  # the refused attempt's transcript is still reported
        finally:
            await cast.close_all()


def test_a_refused_handshake_is_not_a_tab_of_the_device():
    asyncio.run(a_refused_handshake_leaves_the_open_tab_in_place())
