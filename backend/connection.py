"""What every accepted socket has, whatever it speaks: an outbound queue and a bounded life.

A socket ends when its client leaves, when its token expires (4001), when a newer socket of
its user pushes it out of the limit (4008), when its session is revoked (4009), or when it
stops reading its frames (1013). It lives by the plan and role its user had when it opened.
The speaking itself (envelope or JSON-RPC) is a subclass's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any, NamedTuple

from starlette.datastructures import State
from starlette.websockets import WebSocket, WebSocketDisconnect

from .messages import encode
from .tokens import Grant

log = logging.getLogger(__name__)

# Frames queued for a socket that does not read them; past this it is closed, not buffered.
OUTBOX_LIMIT = 256
CLOSE_TOKEN_EXPIRED = 4001
CLOSE_REAUTH_REFUSED = 4003
CLOSE_REPLACED = 4008
CLOSE_REVOKED = 4009
CLOSE_TOO_SLOW = 1013
CLOSE_INTERNAL_ERROR = 1011


class Close(NamedTuple):
    code: int
    reason: str


class Connection:
    def __init__(self, websocket: WebSocket, grant: Grant, state: State):
        self.id = str(uuid.uuid4())
        self.websocket = websocket
        self.identity = grant.identity
        self.expires_at = grant.expires_at
        self.state = state
        catalogue = state.config.plans
        self.plan = catalogue.plan(grant.plan)
        self.role = catalogue.role(grant.role)
        self.standing = grant.standing
        # One writer drains this queue, so frames from the fan-out and direct replies reach
        # the client in the order they were queued; a Close is the last thing it sends.
        self.outbox: asyncio.Queue[str | Close] = asyncio.Queue()
        self.closing: Close | None = None
        self._expiry: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        """Before the upgrade: count the socket in the registry (and enforce the limit), if the
        plan and role it opens with are still its user's (else StandingChanged)."""
        self.state.registry.opens_with(self.id, self.standing)
        await self.state.registry.register(self.id, self.identity, self.plan.max_connections_per_user,
                                           self.replaced, self.revoked)

    async def release(self) -> None:
        """After the socket is gone, or if the handshake failed after `open`."""
        if self._expiry is not None:
            self._expiry.cancel()
        await self.state.registry.unregister(self.id)

    def arm_expiry(self) -> None:
        """Close the socket when its token expires; called again when a new token arrives."""
        if self._expiry is not None:
            self._expiry.cancel()
        if self.expires_at is not None:
            self._expiry = asyncio.get_running_loop().call_later(
                max(0.0, self.expires_at - time.time()), self.close, CLOSE_TOKEN_EXPIRED, "token expired"
            )

    def replaced(self) -> None:
        self.close(CLOSE_REPLACED, "connection limit: a newer connection replaced this one")

    def revoked(self) -> None:
        self.close(CLOSE_REVOKED, "session revoked")

    async def retry_after(self) -> int | None:
        """The message rate limit of this socket's plan: None when this message is counted within it."""
        return await self.state.limiter.retry_after(self.identity.user_id, self.plan.messages_per_minute)

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued; nothing queued later is sent."""
        if self.closing is None:
            self.closing = Close(code, reason)
            self.outbox.put_nowait(self.closing)

    def send(self, message: dict[str, Any] | list[Any]) -> None:
        self.send_text(encode(message))

    def send_text(self, text: str) -> None:
        if self.closing is not None:
            return
        if self.outbox.qsize() >= OUTBOX_LIMIT:
            log.warning("connection %s does not read its frames; closing it", self.id)
            self.close(CLOSE_TOO_SLOW, "too many unread frames")
            return
        self.outbox.put_nowait(text)

    async def write_loop(self) -> None:
        """Send the queued frames, then the Close. It ends only when the client is gone or the
        socket is closed: a writer that stopped early would leave a socket that hears nothing
        and is never closed, not on expiry, revocation or the connection limit.
        """
        try:
            while not isinstance(item := await self.outbox.get(), Close):
                await self.websocket.send_text(sendable(item, self.id))
            await self.websocket.close(item.code, item.reason)
        except (WebSocketDisconnect, OSError) as exc:
            # The client went away; the read loop sees the disconnect and cleans up.
            log.debug("connection %s: send failed (%s)", self.id, type(exc).__name__)
        except Exception:
            log.exception("connection %s: a frame could not be sent; closing the socket with %d", self.id,
                          CLOSE_INTERNAL_ERROR)
            with contextlib.suppress(Exception):
                await self.websocket.close(CLOSE_INTERNAL_ERROR, "internal error")

    async def read_loop(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if self.closing is not None:
                continue  # closing: the client's last words change nothing
            text = message.get("text")
            try:
                if text is None:
                    await self.on_binary()
                else:
                    await self.on_text(text)
            except Exception:
                # A bug in handling one frame: the socket is closed in order, never left behind.
                log.exception("connection %s: handling a frame failed; closing the socket with %d", self.id,
                              CLOSE_INTERNAL_ERROR)
                self.close(CLOSE_INTERNAL_ERROR, "internal error")
            if self.outbox.qsize() >= OUTBOX_LIMIT // 2:
                # Frames that arrived together are read without a pause; give the writer its turn,
                # or a client that reads its answers (say 500 pipelined pings) would be closed as one
                # that does not (1013).
                await asyncio.sleep(0)

    async def on_text(self, text: str) -> None:
        raise NotImplementedError

    async def on_binary(self) -> None:
        raise NotImplementedError


def sendable(text: str, connection_id: str) -> str:
    """`text` as it can go out in a text frame: UTF-8 encodable.

    Client frames are checked for lone surrogates when they arrive, so this should never
    change anything. If one slips through anyway, its JSON escape goes out instead: the
    same JSON value, and the writer lives on.
    """
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        log.warning("connection %s: a frame held a lone surrogate; sent it escaped", connection_id)
        return text.encode("utf-8", "backslashreplace").decode()
    return text
