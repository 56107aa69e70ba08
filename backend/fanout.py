"""Event fan-out through Redis pub/sub (contract section 6).

Each instance holds one subscription connection shared by all its sockets. A channel is
subscribed while at least one local socket listens to it; a single reader task hands every
message, in the order Redis delivered it, to the sinks registered for its channel.
Publishing goes through a bounded connection pool, where a burst waits for a free connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any
from uuid import UUID

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .history import History, Retention, keeps
from .messages import encode

log = logging.getLogger(__name__)

# Receives the JSON text of one frame. Called from the reader task, so it must not block.
Sink = Callable[[str], None]
# While Redis is out of reach the subscription is tried again this often: a short outage is
# over for the sockets a moment after Redis is back.
RECONNECT_DELAY_SECONDS = 0.25
# Connections to Redis, the subscription's included, and how long a command may wait for a
# free one before it fails as unavailable.
POOL_CONNECTIONS = 100
POOL_WAIT_SECONDS = 2.0
# Errors that mean Redis cannot be reached right now.
UNAVAILABLE = (OSError, redis.ConnectionError, redis.TimeoutError)


def session_channel(session_id: UUID) -> str:
    return f"events:session:{session_id}"


def user_channel(user_id: UUID) -> str:
    return f"events:user:{user_id}"


class Fanout:
    def __init__(self, redis_url: str, retention: Retention = Retention()):
        # A burst of more commands than the pool has connections waits for one (bounded),
        # rather than failing: redis-py's default pool raises at its 100th connection.
        # A connection Redis dropped (an outage, a restart) fails its next command; that command is
        # tried once more on a fresh connection, so the first commands after Redis is back succeed.
        pool = redis.BlockingConnectionPool.from_url(redis_url, decode_responses=True, max_connections=POOL_CONNECTIONS,
                                                     timeout=POOL_WAIT_SECONDS, retry=Retry(NoBackoff(), 1))
        self.redis = redis.Redis.from_pool(pool)
        # Each session's recent events, for a client that resumes (backend/history.py).
        self.history = History(self.redis, retention)
        self._pubsub = self.redis.pubsub()
        self._sinks: dict[str, set[Sink]] = {}
        # One future per SUBSCRIBE sent, resolved in order by Redis's confirmations:
        # True when confirmed, False when the subscription connection failed first.
        self._unconfirmed: dict[str, deque[asyncio.Future[bool]]] = {}
        # Decisions to (un)subscribe and the commands that carry them go out in one order.
        self._commands = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.redis.ping()
        await self._pubsub.connect()
        self._reader = asyncio.create_task(self._read(), name="fanout-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._pubsub.aclose()
        await self.redis.aclose()

    async def publish(self, channel: str, frame: dict[str, Any]) -> None:
        """Publish one frame; a session's event is kept for resuming and carries its `seq`."""
        if keeps(channel, frame):
            await self.history.publish(channel, frame)
        else:
            await self.redis.publish(channel, encode(frame))

    async def subscribe(self, channel: str, sink: Sink) -> None:
        """Route `channel` to `sink`; return once Redis has confirmed the subscription."""
        async with self._commands:
            sinks = self._sinks.setdefault(channel, set())
            if not sinks:
                confirmed = asyncio.get_running_loop().create_future()
                pending = self._unconfirmed.setdefault(channel, deque())
                pending.append(confirmed)
                try:
                    await self._pubsub.subscribe(channel)
                except BaseException:
                    if confirmed in pending:
                        pending.remove(confirmed)
                    del self._sinks[channel]
                    raise
            sinks.add(sink)
            pending = self._unconfirmed.get(channel)
            confirmed = pending[-1] if pending else None
        # Shielded: one socket giving up must not cancel the wait of the others.
        if confirmed is not None and not await asyncio.shield(confirmed):
            raise ConnectionError(f"Redis did not confirm the subscription to {channel}")

    async def unsubscribe(self, channel: str, sink: Sink) -> None:
        """Stop routing `channel` to `sink`; the last local sink to leave unsubscribes."""
        async with self._commands:
            sinks = self._sinks.get(channel)
            if sinks is None or sink not in sinks:
                return
            sinks.remove(sink)
            if sinks:
                return
            del self._sinks[channel]
            try:
                await self._pubsub.unsubscribe(channel)
            except redis.RedisError as exc:
                # Messages on it now find no sink and are dropped; nothing leaks.
                log.warning("could not unsubscribe from %s: %s", channel, exc)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except (redis.RedisError, OSError) as exc:
                log.warning("Redis subscription failed (%s); reconnecting", exc)
                self._fail_unconfirmed()
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)
                continue
            if message is None:
                continue
            kind, channel = message["type"], message["channel"]
            if kind == "message":
                for sink in tuple(self._sinks.get(channel, ())):
                    try:
                        sink(message["data"])
                    except Exception:
                        log.exception("a socket failed to take an event from %s; others still get it", channel)
            elif kind == "subscribe":
                pending = self._unconfirmed.get(channel)
                if pending:
                    confirmed = pending.popleft()
                    if not confirmed.done():
                        confirmed.set_result(True)
                if not pending:
                    self._unconfirmed.pop(channel, None)

    def _fail_unconfirmed(self) -> None:
        for pending in self._unconfirmed.values():
            for confirmed in pending:
                if not confirmed.done():
                    confirmed.set_result(False)
        self._unconfirmed.clear()
