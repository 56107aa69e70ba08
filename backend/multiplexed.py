"""One Redis connection that carries many commands at once: each is sent the moment it is
asked, and Redis answers a connection's commands in the order they came, so one reader hands
each reply to its caller in turn.

A handshake's one Redis command (registry.REGISTER) goes this way. Through the connection
pool, the pool's bookkeeping, its timeouts and a task per send cost about as much again as
Redis itself, once per handshake, and handshakes in flight at once would each hold a pool
connection for a round trip; here they share one, with nothing to wait for but the reply.

A command that does not get its reply within ``timeout`` fails with redis.TimeoutError, and
so does every other one waiting on the connection, which is dropped: a Redis that stopped
answering is not waited on twice. Any other failure of the connection fails the commands
waiting on it with redis.ConnectionError, and the next command opens a new one (a command that
finds its connection broken is tried once more, on a new one). Either error means
"unavailable", as for a command through the pool (fanout.UNAVAILABLE). A command's own error
(a ResponseError) fails that command alone.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any

import redis.asyncio as redis
from hiredis import pack_command
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError


class Multiplexed:
    def __init__(self, pool: redis.ConnectionPool, timeout: float):
        self._pool = pool  # for its connection settings only: this connection is not the pool's
        self._timeout = timeout
        self._connection: AbstractConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._connecting = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply.

        A connection that Redis (or the network) dropped fails the next command sent on it, before
        the reader has seen it go: that command is tried once more on a fresh connection, as
        through the pool (fanout.py), so the first commands after an outage succeed.
        """
        try:
            return await self._once(*args)
        except (redis.ConnectionError, ConnectionError):
            return await self._once(*args)

    async def _once(self, *args: Any) -> Any:
        connection = self._connection or await self._connect()
        reply = asyncio.get_running_loop().create_future()
        self._waiting.append(reply)
        try:
            async with asyncio.timeout(self._timeout):
                # hiredis packs the command in C, as redis-py's asyncio connection does not.
                await connection.send_packed_command(pack_command(args), check_health=False)
                return await reply
        except TimeoutError:
            error = redis.TimeoutError(f"Redis did not answer within {self._timeout} s")
            self._drop(connection, error)
            raise error from None
        except (redis.ConnectionError, OSError) as exc:
            self._drop(connection, exc)
            raise

    async def evalsha(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Run a registered script (redis-py's Script), loading it first if Redis does not know it."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.execute("SCRIPT", "LOAD", script.script)
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def close(self) -> None:
        if self._connection is not None:
            self._drop(self._connection, redis.ConnectionError("closed"))
        await asyncio.gather(*(task for task in (self._reader, *self._closing) if task is not None),
                             return_exceptions=True)

    async def _connect(self) -> AbstractConnection:
        async with self._connecting:
            if self._connection is None:
                connection = self._pool.connection_class(**self._pool.connection_kwargs)
                async with asyncio.timeout(self._timeout):
                    await connection.connect()
                self._connection = connection
                self._reader = asyncio.create_task(self._read(connection), name="redis-multiplexed-reader")
            return self._connection

    async def _read(self, connection: AbstractConnection) -> None:
        try:
            while True:
                try:
                    response: Any = await connection.read_response(timeout=math.inf, disconnect_on_error=False)
                except ResponseError as error:
                    response = error
                if not self._waiting:
                    raise redis.ConnectionError("Redis sent a reply nobody asked for")
                reply = self._waiting.popleft()
                if reply.done():  # its caller gave up (cancelled); the reply is read all the same
                    continue
                if isinstance(response, ResponseError):
                    reply.set_exception(response)
                else:
                    reply.set_result(response)
        except asyncio.CancelledError:
            raise
        except (redis.RedisError, OSError) as exc:
            self._drop(connection, exc if isinstance(exc, redis.RedisError) else redis.ConnectionError(str(exc)))

    def _drop(self, connection: AbstractConnection, error: BaseException) -> None:
        """Fail every command waiting on ``connection`` with ``error``, and let it go."""
        if connection is not self._connection:
            return
        self._connection = None
        waiting, self._waiting = self._waiting, deque()
        for reply in waiting:
            if not reply.done():
                reply.set_exception(error)
                reply.exception()  # retrieved here: a caller that gave up will not
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        closing = asyncio.get_running_loop().create_task(connection.disconnect(nowait=True))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
