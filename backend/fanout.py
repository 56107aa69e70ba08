"""Event fan-out through Redis pub/sub (contract section 6).

Each instance holds one subscription connection shared by all its sockets. A channel is
subscribed while at least one local socket listens to it; a single reader task hands every
message, in the order Redis delivered it, to the sinks registered for its channel.
Publishing goes through a bounded connection pool, where a burst waits for a free connection.
Channels with a prefix given as `everywhere` (the registry's few control messages) are heard
through one pattern subscription made at start, so routing them to a socket costs Redis nothing.
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
from .multiplexed import Multiplexed

log = logging.getLogger(__name__)

# Receives the JSON text of one frame. Called from the reader task, so it must not block.
Sink = Callable[[str], None]
# While Redis is out of reach the subscription is tried again this often: a short outage is
# over for the sockets a moment after Redis is back.
RECONNECT_DELAY_SECONDS = 0.25
# A channel whose last socket left stays subscribed this long, so that a client coming
# back (a reload, a network blip, another tab) costs its handshake no SUBSCRIBE.
LINGER_SECONDS = 10.0
# Connections to Redis, the subscription's included, and how long a command may wait for a
# free one before it fails as unavailable.
POOL_CONNECTIONS = 100
POOL_WAIT_SECONDS = 2.0
# A handshake's command that Redis has not answered within this long fails as unavailable.
HANDSHAKE_COMMAND_SECONDS = 2.0
# Errors that mean Redis cannot be reached right now.
UNAVAILABLE = (OSError, redis.ConnectionError, redis.TimeoutError)


def session_channel(session_id: UUID) -> str:
    return f"events:session:{session_id}"


def user_channel(user_id: UUID) -> str:
    return f"events:user:{user_id}"


class Fanout:
    def __init__(self, redis_url: str, retention: Retention = Retention(), everywhere: tuple[str, ...] = ()):
        # A burst of more commands than the pool has connections waits for one (bounded),
        # rather than failing: redis-py's default pool raises at its 100th connection.
        # A connection Redis dropped (an outage, a restart) fails its next command; that command is
        # tried once more on a fresh connection, so the first commands after Redis is back succeed.
        pool = redis.BlockingConnectionPool.from_url(redis_url, decode_responses=True, max_connections=POOL_CONNECTIONS,
                                                     timeout=POOL_WAIT_SECONDS, retry=Retry(NoBackoff(), 1))
        self.redis = redis.Redis.from_pool(pool)
        # The handshake's command, on a connection of its own shared by all (backend/multiplexed.py).
        self.handshakes = Multiplexed(pool, HANDSHAKE_COMMAND_SECONDS)
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
        self._everywhere = everywhere
        # Channels no socket listens to any more, still subscribed: their timer to unsubscribe,
        # and the subscription's generation (it moves on whenever the subscription fails).
        self._lingering: dict[str, tuple[asyncio.TimerHandle, int]] = {}
        self._generation = 0
        self._unsubscribing: set[asyncio.Task[None]] = set()
        # Called when the subscription fails: whatever was published meanwhile went unheard.
        self.on_failure: list[Callable[[], None]] = []

    async def start(self) -> None:
        await self.redis.ping()
        await self._pubsub.connect()
        if self._everywhere:
            await self._pubsub.psubscribe(*(prefix + "*" for prefix in self._everywhere))
        self._reader = asyncio.create_task(self._read(), name="fanout-reader")

    async def close(self) -> None:
        for timer, _ in self._lingering.values():
            timer.cancel()
        for task in self._unsubscribing:
            task.cancel()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._pubsub.aclose()
        await self.handshakes.close()
        await self.redis.aclose()

    async def publish(self, channel: str, frame: dict[str, Any]) -> None:
        """Publish one frame; a session's event is kept for resuming and carries its `seq`."""
        if keeps(channel, frame):
            await self.history.publish(channel, frame)
        else:
            await self.redis.publish(channel, encode(frame))

    def subscribed(self, channel: str) -> bool:
        """Whether `channel` is subscribed and confirmed, so that subscribe() costs Redis nothing."""
        if channel.startswith(self._everywhere):
            return True
        if channel in self._unconfirmed:
            return False
        lingering = self._lingering.get(channel)
        return bool(self._sinks.get(channel)) or (lingering is not None and lingering[1] == self._generation)

    async def subscribe(self, channel: str, sink: Sink) -> None:
        """Route `channel` to `sink`; return once Redis has confirmed the subscription."""
        if channel.startswith(self._everywhere):
            self._sinks.setdefault(channel, set()).add(sink)
            return
        async with self._commands:
            sinks = self._sinks.setdefault(channel, set())
            lingering = self._lingering.pop(channel, None)
            if lingering is not None:
                lingering[0].cancel()
            # Still subscribed, unless the subscription failed since: then it is confirmed afresh.
            if not sinks and (lingering is None or lingering[1] != self._generation):
                confirmed = asyncio.get_running_loop().create_future()
                pending = self._unconfirmed.setdefault(channel, deque())
                pending.append(confirmed)
                try:
                    await self._pubsub.subscribe(channel)
                except BaseException:
                    if confirmed in pending:
                        pending.remove(confirmed)
                    del self._sinks[channel]
                    if lingering is not None:  # perhaps subscribed still: unsubscribed in time
                        self._linger(channel)
                    raise
            sinks.add(sink)
            pending = self._unconfirmed.get(channel)
            confirmed = pending[-1] if pending else None
        # Shielded: one socket giving up must not cancel the wait of the others.
        if confirmed is not None and not await asyncio.shield(confirmed):
            raise ConnectionError(f"Redis did not confirm the subscription to {channel}")

    async def unsubscribe(self, channel: str, sink: Sink) -> None:
        """Stop routing `channel` to `sink`; the last local sink to leave unsubscribes, after LINGER_SECONDS."""
        if channel.startswith(self._everywhere):
            sinks = self._sinks.get(channel, set())
            sinks.discard(sink)
            if not sinks:
                self._sinks.pop(channel, None)
            return
        async with self._commands:
            sinks = self._sinks.get(channel)
            if sinks is None or sink not in sinks:
                return
            sinks.remove(sink)
            if not sinks:
                self._linger(channel)

    def _linger(self, channel: str) -> None:
        def unsubscribe() -> None:
            task = asyncio.create_task(self._unsubscribe_unused(channel))
            self._unsubscribing.add(task)
            task.add_done_callback(self._unsubscribing.discard)

        timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, unsubscribe)
        self._lingering[channel] = (timer, self._generation)

    async def _unsubscribe_unused(self, channel: str) -> None:
        async with self._commands:
            if self._sinks.get(channel) or channel not in self._lingering:
                return  # a socket came back for it meanwhile
            del self._lingering[channel]
            self._sinks.pop(channel, None)
            try:
                await self._pubsub.unsubscribe(channel)
            except (redis.RedisError, *UNAVAILABLE) as exc:
                # Messages on it now find no sink and are dropped; nothing leaks.
                log.warning("could not unsubscribe from %s: %s", channel, exc)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except (redis.RedisError, OSError) as exc:
                log.warning("Redis subscription failed (%s); reconnecting", exc)
                self._fail_unconfirmed()
                self._generation += 1
                for hook in self.on_failure:
                    hook()
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)
                continue
            if message is None:
                continue
            kind, channel = message["type"], message["channel"]
            if kind in ("message", "pmessage"):
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
