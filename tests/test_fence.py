"""A fence answered with an error fails at once, with the service's answer."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.server import serve

from support.connection import RecordedConnection
from support.leaks import LeakDetector, Party


async def _answer_fences_with(error: str | None):
    async def handler(socket):
        async for text in socket:
            message = json.loads(text)
            if error:
                await socket.send(json.dumps({"type": "error", "id": message["id"],
                                              "payload": {"code": error, "message": "try again"}}))
            else:
                await socket.send(json.dumps({"type": "fence", "id": message["id"], "payload": {}}))

    return await serve(handler, "127.0.0.1", 0)


@pytest.mark.parametrize("error", [None, "unavailable"])
def test_a_fence_ends_with_its_answer_and_an_error_fails_at_once(error):
    async def run():
        server = await _answer_fences_with(error)
        port = server.sockets[0].getsockname()[1]
        connection = RecordedConnection(Party("Bob", "user-b", "session-b", "phone"), LeakDetector())
        await connection.open(f"ws://127.0.0.1:{port}/ws", carrier=None, token=None, timeout=5)
        started = time.monotonic()
        try:
            return await connection.fence(timeout=5, backstop=0), time.monotonic() - started
        finally:
            await connection.close()
            server.close()
            await server.wait_closed()

    if error is None:
        fence_id, elapsed = asyncio.run(run())
        assert fence_id and elapsed < 1
        return
    started = time.monotonic()
    with pytest.raises(AssertionError, match="Bob's phone sent a fence and was answered .*unavailable"):
        asyncio.run(run())
    assert time.monotonic() - started < 1, "the fence waited out its timeout instead of failing at once"
