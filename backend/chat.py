"""The JSON envelope on /ws, /ws/{user_id} and /ws/v1/{user_id} (contract section 5)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import Any

import asyncpg
import redis.asyncio as redis
from starlette.datastructures import State
from starlette.websockets import WebSocket

from . import db, fanout
from .auth import recheck_live_token
from .agent import AGENTS, DEFAULT_AGENT, Ask
from .connection import CLOSE_REAUTH_REFUSED, Connection
from .fanout import session_channel, user_channel
from .history import Resumption, frame_position
from .messages import UNCOUNTED_TYPES, ClientMessage, ProtocolError, error_frame, frame, parse, timestamp
from .tokens import Grant
from .tools import DEFAULT_TOOL, TOOLS

log = logging.getLogger(__name__)

# A failing dependency costs the client one answer (`unavailable`), not its socket.
UNAVAILABLE = (*db.UNAVAILABLE, *fanout.UNAVAILABLE, redis.RedisError)
SCOPES = ("session", "user")
RESUME_PARAMETER = "last_event_id"


class ChatConnection(Connection):
    def __init__(self, websocket: WebSocket, grant: Grant, state: State):
        super().__init__(websocket, grant, state)
        self.channels = (session_channel(self.identity.session_id), user_channel(self.identity.user_id))
        self.agent_turn = asyncio.Lock()
        # Resuming (contract section 6a): live frames are held back until the missed ones are queued.
        self.last_event_id = websocket.query_params.get(RESUME_PARAMETER) or None
        self._held: list[str] | None = None
        # After the catch-up: the stream position it brought the socket up to (see deliver).
        self._caught_up_to: tuple[int, int] | None = None
        connected = {"user_id": str(self.identity.user_id), "session_id": str(self.identity.session_id),
                     "connection_id": self.id}
        self.send(frame("connected", None, connected))

    async def open(self) -> None:
        # Subscribed and counted before the upgrade (at once when a channel needs its SUBSCRIBE):
        # nothing reaches the client before its welcome, and it hears every event published after.
        # Fan-out frames arrive encoded and go out as they are. A resuming socket subscribes
        # first and holds what arrives, then reads what it missed: nothing falls between the
        # two, and what both bring is sent once (as Centrifugo recovers a subscription).
        if self.last_event_id is not None:
            self._held = []
        fanout = self.state.fanout
        if all(fanout.subscribed(channel) for channel in self.channels):
            for channel in self.channels:  # nothing to ask Redis: no task for each
                await fanout.subscribe(channel, self.deliver)
            await super().open()
        else:
            await together(*(fanout.subscribe(channel, self.deliver) for channel in self.channels), super().open())
        if self.last_event_id is not None:
            resumption = await self.state.fanout.history.resume(self.channels[0], self.last_event_id)
            self.catch_up(resumption)

    async def release(self) -> None:
        await super().release()
        for channel in self.channels:
            await self.state.fanout.unsubscribe(channel, self.deliver)

    def deliver(self, text: str) -> None:
        """A fan-out frame: sent on, held while the socket catches up, or dropped if the catch-up brought it.

        An event published between the subscription and the read of what was missed is in the
        read, and also on its way through the subscription, on another connection: it may be
        heard only after the catch-up was queued. The session's events are heard in order, so
        once one newer than the catch-up arrives, none after it can be older.
        """
        if self._held is not None:
            self._held.append(text)
            return
        if self._caught_up_to is not None:
            position = frame_position(text)
            if position is not None:
                if position <= self._caught_up_to:
                    return
                self._caught_up_to = None
        self.send_text(text)

    def catch_up(self, resumption: Resumption) -> None:
        """Queue what the socket missed (or why it cannot have it), then what was held, once each."""
        retention = self.state.fanout.history.retention
        if resumption.outcome == "gap":
            self.send(frame("resume_gap", None, {"last_event_id": self.last_event_id,
                                                 "retained_events": retention.events,
                                                 "retained_seconds": retention.seconds}))
        elif resumption.outcome == "not_found":
            self.send(error_frame("not_found", "no such event to resume from"))
        for text in resumption.frames:
            # Bounded by the retention, so not counted against the unread-frame limit.
            if self.closing is None:
                self.outbox.put_nowait(text)
        held, self._held = self._held or [], None
        self._caught_up_to = resumption.last
        for text in held:
            self.deliver(text)

    # Frames in -------------------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        try:
            message, refusal = parse(text), None
        except ProtocolError as exc:
            message, refusal = None, exc
        request_id = message.id if message else refusal.id
        try:
            # Every frame counts but ping and fence, even one that does not parse: garbage
            # is no way around the limit.
            if (message is None or message.type not in UNCOUNTED_TYPES) and await self.rate_limited(request_id):
                return
            if refusal is not None:
                raise refusal
            if _claims_another_user(message.payload, self.identity.user_id):
                raise ProtocolError("forbidden_identity", "the message claims another user's identity", message.id)
            # Each client type (checked by parse) is the name of its handler below.
            await getattr(self, message.type)(message)
        except ProtocolError as exc:
            self.send(exc.frame())
        except UNAVAILABLE as exc:
            log.warning("connection %s: a dependency is unavailable (%s)", self.id, type(exc).__name__)
            self.send(error_frame("unavailable", "the service is temporarily unavailable; try again", request_id))

    async def on_binary(self) -> None:
        try:
            if await self.rate_limited(None):
                return
        except UNAVAILABLE:
            pass  # the answer is the same either way
        self.send(error_frame("binary_frame", "this socket speaks JSON text frames only; got a binary frame"))

    async def rate_limited(self, message_id: str | None) -> bool:
        retry_after = await self.retry_after()
        if retry_after is None:
            return False
        self.send(error_frame("rate_limited", f"too many messages; retry in {retry_after} s", message_id,
                              retry_after_seconds=retry_after))
        return True

    # Message types ---------------------------------------------------------------------

    async def ping(self, message: ClientMessage) -> None:
        self.send(frame("pong", message.id, {}))

    async def fence(self, message: ClientMessage) -> None:
        # Through Redis on purpose: the fence's reply follows every event published before it.
        await self.state.fanout.publish(self.channels[0], frame("fence", message.id, {}))

    async def chat(self, message: ClientMessage) -> None:
        agent = _name(message, "agent", AGENTS, DEFAULT_AGENT)
        tool = _default(message.payload.get("tool"), DEFAULT_TOOL)
        if not isinstance(tool, str) or tool not in TOOLS:
            raise ProtocolError("unknown_tool", f"unknown tool {str(tool)[:40]!r}; expected one of {', '.join(TOOLS)}",
                                message.id, tool=str(tool)[:200])
        ask = Ask(self.identity, message.id, message.payload["text"], agent, tool)
        self.state.agent.start(ask, self.plan, self.role, self.send, self.agent_turn)

    async def reauthenticate(self, message: ClientMessage) -> None:
        """The socket lives on by a new token, of this very user and session, or not at all.

        It keeps the plan it opened with: a plan change applies to the next connection.
        """
        grant = await recheck_live_token(self.state.config, self.state.store, message.payload["token"])
        if grant is None or grant.identity != self.identity:
            self.send(error_frame("reauthentication_refused", "the token is not valid for this socket", message.id))
            self.close(CLOSE_REAUTH_REFUSED, "reauthentication refused")
            return
        self.expires_at = grant.expires_at
        self.arm_expiry()
        expires_at = timestamp(datetime.fromtimestamp(grant.expires_at, timezone.utc))
        self.send(frame("reauthenticated", message.id, {"expires_at": expires_at}))

    async def thread_create(self, message: ClientMessage) -> None:
        title, scope = message.payload["title"].strip(), message.payload["scope"]
        if "\x00" in title:  # PostgreSQL text holds no NUL: refused here, not a database error (1011)
            raise ProtocolError("invalid_message", '"title" holds a NUL character; expected plain text', message.id,
                                field="title")
        if scope not in SCOPES:
            raise ProtocolError("invalid_message", '"scope" must be "session" or "user"', message.id, field="scope")
        thread_id = await db.create_thread(
            self.state.pool, user_id=self.identity.user_id,
            session_id=self.identity.session_id if scope == "session" else None, scope=scope, title=title,
        )
        self.send(frame("thread_created", message.id, {"thread_id": str(thread_id), "title": title, "scope": scope}))

    async def thread_list(self, message: ClientMessage) -> None:
        rows = await db.list_threads(self.state.pool, self.identity.user_id, self.identity.session_id)
        threads = [{"thread_id": str(row["id"]), "title": row["title"], "scope": row["scope"]} for row in rows]
        self.send(frame("threads", message.id, {"threads": threads}))

    async def thread_read(self, message: ClientMessage) -> None:
        thread = await self.visible_thread(message)
        rows = await db.thread_messages(self.state.pool, thread["id"])
        self.send(frame("thread", message.id, {
            "thread_id": str(thread["id"]), "title": thread["title"], "scope": thread["scope"],
            "messages": [{"text": row["text"], "ts": timestamp(row["created_at"])} for row in rows],
        }))

    async def thread_post(self, message: ClientMessage) -> None:
        thread = await self.visible_thread(message)
        text = message.payload["text"]
        if "\x00" in text:
            raise ProtocolError("invalid_message", '"text" holds a NUL character; expected plain text', message.id,
                                field="text")
        await db.add_thread_message(self.state.pool, thread["id"], self.identity.user_id, self.identity.session_id, text)
        audience = session_channel(thread["session_id"]) if thread["scope"] == "session" else self.channels[1]
        await self.state.fanout.publish(audience, frame("thread_message", message.id,
                                                        {"thread_id": str(thread["id"]), "text": text}))

    async def thread_subscribe(self, message: ClientMessage) -> None:
        # The thread's audience already gets its messages through its channels; this
        # confirms the socket is in that audience.
        thread = await self.visible_thread(message)
        self.send(frame("thread_subscribed", message.id, {"thread_id": str(thread["id"])}))

    async def visible_thread(self, message: ClientMessage) -> asyncpg.Record:
        """The thread named in the payload, or `not_found`, the same for every reason."""
        try:
            thread_id = uuid.UUID(message.payload["thread_id"])
        except ValueError:
            thread_id = None  # not even an id: answered like any other thread that is not there
        thread = None if thread_id is None else await db.visible_thread(
            self.state.pool, thread_id, self.identity.user_id, self.identity.session_id
        )
        if thread is None:
            raise ProtocolError("not_found", "no such thread", message.id)
        return thread


def _name(message: ClientMessage, field: str, allowed: tuple[str, ...], default: str) -> str:
    value = _default(message.payload.get(field), default)
    if value not in allowed:
        raise ProtocolError("invalid_message", f'"{field}" must be one of {", ".join(allowed)}', message.id, field=field)
    return value


def _default(value: Any, default: str) -> Any:
    return default if value is None else value  # an explicit null asks for the default too


def _claims_another_user(payload: dict[str, Any], user_id: uuid.UUID) -> bool:
    if "user_id" not in payload:
        return False
    try:
        return uuid.UUID(str(payload["user_id"])) != user_id
    except ValueError:
        return True


async def together(*steps: Awaitable[None]) -> None:
    """Run the steps at once; the first to fail has the others cancelled and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for step in steps:
                group.create_task(step)
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
