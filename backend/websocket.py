"""The /ws endpoint: authenticate before the upgrade, then serve one client's socket."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import redis.asyncio as redis
from starlette.datastructures import State
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from . import db, fanout
from .auth import authenticate_handshake, selected_subprotocol
from .fanout import session_channel, user_channel
from .messages import ClientMessage, ProtocolError, encode, error_frame, frame, parse
from .tokens import Identity

log = logging.getLogger(__name__)

UNAUTHORIZED = {"error": "unauthorized", "message": "authentication required"}
UNAVAILABLE = {"error": "unavailable", "message": "the service is temporarily unavailable; try again"}
# Frames queued for a socket that does not read them; past this it is closed, not buffered.
OUTBOX_LIMIT = 256
CLOSE_TOO_SLOW = 1013


async def websocket_endpoint(websocket: WebSocket) -> None:
    state = websocket.app.state
    connection: Connection | None = None
    # Everything before the upgrade is bounded: a client never waits on a stuck
    # dependency longer than the handshake timeout.
    try:
        async with asyncio.timeout(state.config.handshake_timeout_seconds):
            identity = await authenticate_handshake(websocket, state.config, state.pool)
            if identity is not None:
                connection = Connection(websocket, identity, state)
                await connection.subscribe()
    except (TimeoutError, *db.UNAVAILABLE, *fanout.UNAVAILABLE) as exc:
        log.warning("refusing a socket: a dependency failed during the handshake (%s)", type(exc).__name__)
        if connection is not None:
            await connection.unsubscribe()
        await websocket.send_denial_response(JSONResponse(UNAVAILABLE, status_code=503))
        return
    if connection is None:
        await websocket.send_denial_response(
            JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        )
        return

    writer: asyncio.Task[None] | None = None
    try:
        await websocket.accept(subprotocol=selected_subprotocol(websocket))
        writer = asyncio.create_task(connection.write_loop(), name=f"ws-writer-{connection.id}")
        await connection.read_loop()
    finally:
        await connection.unsubscribe()
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)


class Connection:
    """One accepted socket: its identity, its channels and its outbound queue."""

    def __init__(self, websocket: WebSocket, identity: Identity, state: State):
        self.id = str(uuid.uuid4())
        self.websocket = websocket
        self.identity = identity
        self.state = state
        self.channels = (session_channel(identity.session_id), user_channel(identity.user_id))
        # One writer drains this queue, so frames from the fan-out and direct replies
        # reach the client in the order they were queued. None asks the writer to close.
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.too_slow = False
        self.agent_turn = asyncio.Lock()
        connected = {"user_id": str(identity.user_id), "session_id": str(identity.session_id), "connection_id": self.id}
        self.send(frame("connected", None, connected))

    async def subscribe(self) -> None:
        for channel in self.channels:
            await self.state.fanout.subscribe(channel, self.deliver)

    async def unsubscribe(self) -> None:
        for channel in self.channels:
            await self.state.fanout.unsubscribe(channel, self.deliver)

    def deliver(self, text: str) -> None:
        """Fan-out sink: the frame arrives already encoded."""
        self._enqueue(text)

    def send(self, message: dict[str, Any]) -> None:
        self._enqueue(encode(message))

    def _enqueue(self, text: str) -> None:
        if self.too_slow:
            return
        if self.outbox.qsize() >= OUTBOX_LIMIT:
            log.warning("connection %s does not read its frames; closing it", self.id)
            self.too_slow = True
            self.outbox.put_nowait(None)
            return
        self.outbox.put_nowait(text)

    async def write_loop(self) -> None:
        try:
            while (text := await self.outbox.get()) is not None:
                await self.websocket.send_text(text)
            await self.websocket.close(CLOSE_TOO_SLOW, "too many unread frames")
        except Exception as exc:
            # The client went away; the read loop sees the disconnect and cleans up.
            log.debug("connection %s: send failed (%s)", self.id, type(exc).__name__)

    async def read_loop(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.send(error_frame("invalid_json", "expected a JSON text frame, got a binary frame"))
                continue
            try:
                await self.handle(parse(text))
            except ProtocolError as exc:
                self.send(exc.frame())

    async def handle(self, message: ClientMessage) -> None:
        if message.type == "ping":
            self.send(frame("pong", message.id, {}))
        elif message.type == "fence":
            # Through Redis on purpose: the fence's reply follows every event published before it.
            try:
                await self.state.fanout.publish(self.channels[0], frame("fence", message.id, {}))
            except redis.RedisError as exc:
                log.warning("could not publish a fence: %s", exc)
                self.send(error_frame("unavailable", "the event fan-out is unavailable; try again", message.id))
        elif message.type == "chat":
            self.state.agent.start(self.identity, message.id, message.payload["text"], self.send, self.agent_turn)
