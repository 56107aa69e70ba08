"""A session's standing (the user's plan and role, and that the session is live), kept between handshakes.

Checking a session in the database is most of what an accepted handshake costs. So each
instance keeps what the database last said of a session, under the version of its user's
standing, `standing:user:<user_id>` in Redis. Every change of that standing moves the
version on after the database is written and before the change is answered: a revocation
(in the same step as the session's revocation mark, registry.py) and a change of plan or
role (account.py). A handshake may open with a kept standing only if the register script,
which counts the socket, finds the version unchanged; otherwise nothing is counted and the
handshake asks the database (contract sections 12 and 13).

A version is read before the database, and a standing is kept under the version read
before it: a change racing the read moves the version on after it, so it is never kept as
current. A version begins as a random number, so a key Redis lost and began again never
matches what an instance kept. On any trouble with Redis, and whenever the fan-out's
subscription fails, everything kept is forgotten: a change may have gone unheard.

The database says the same at every such commit (migration 0004: NOTIFY standing_changed,
with the user's id), and every instance listens on a connection of its own (ChangeNotices).
That is what still reaches the other instances when the one that made the change cannot
reach Redis. Nothing is kept, or used, while that connection is not listening: from start-up
until it listens, and from the moment it is lost (the database out of reach, say) until it
listens again. So a handshake while the database is out of reach asks it, and is refused.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import redis.asyncio as redis

from . import db
from .fanout import UNAVAILABLE

log = logging.getLogger(__name__)

# Sessions kept per instance; past this the least recently used is forgotten.
MAX_KEPT = 100_000
# A user's version lives as long as a day without a change or a first handshake.
VERSION_SECONDS = 24 * 3600
# The database's channel of changes (migration 0004), and how the connection that hears it is
# kept: a probe this often, within as long; after a failure, a new connection this often.
NOTICES_CHANNEL = "standing_changed"
PROBE_SECONDS = 1.0
RECONNECT_SECONDS = 0.5
NOT_HEARD = "the database's notices of changes stopped"

# KEYS: the user's version. ARGV: a random first version, its lifetime. Returns the version.
READ_VERSION = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
"""

# KEYS: the user's version. ARGV: a random first version, its lifetime. Moves the version on.
MOVE_VERSION = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
"""


def version_key(user_id: UUID) -> str:
    return f"standing:user:{user_id}"


@dataclass(frozen=True)
class Standing:
    """What the database said of a live session: the user's plan and role, read under `version`
    (None when the version could not be read: such a standing is used once and not kept)."""

    plan: str
    role: str
    version: str | None


class StandingCache:
    def __init__(self, client: redis.Redis):
        self._redis = client
        self._read_version = client.register_script(READ_VERSION)
        self._move_version = client.register_script(MOVE_VERSION)
        self._kept: OrderedDict[UUID, tuple[UUID, Standing]] = OrderedDict()
        self._sessions_of: dict[UUID, set[UUID]] = {}  # user -> their sessions kept
        # Moves on whenever everything is forgotten, or the database's notices begin to be
        # heard again: a read begun before is not kept after.
        self._epoch = 0
        # The database's notices are heard (ChangeNotices): until then nothing is kept or used.
        self.listening = False

    def kept(self, user_id: UUID, session_id: UUID) -> Standing | None:
        if not self.listening:
            return None
        entry = self._kept.get(session_id)
        if entry is None or entry[0] != user_id:
            return None
        self._kept.move_to_end(session_id)
        return entry[1]

    async def version(self, user_id: UUID) -> tuple[str | None, int]:
        """The user's version now (None if Redis did not answer), and the epoch it was read in."""
        epoch = self._epoch
        try:
            return str(await self._read_version(keys=[version_key(user_id)],
                                                args=[secrets.randbits(53), VERSION_SECONDS])), epoch
        except (redis.RedisError, *UNAVAILABLE) as exc:
            self.forget_all(f"Redis did not answer ({type(exc).__name__})")
            return None, epoch

    async def move_on(self, user_id: UUID, client: redis.Redis | None = None) -> None:
        """Move the user's version on (on `client`, say a pipeline): what any instance kept is stale."""
        await self._move_version(keys=[version_key(user_id)], args=[secrets.randbits(53), VERSION_SECONDS],
                                 client=client or self._redis)

    def keep(self, user_id: UUID, session_id: UUID, standing: Standing, epoch: int) -> None:
        if standing.version is None or epoch != self._epoch or not self.listening:
            return
        self.forget(session_id)
        self._kept[session_id] = (user_id, standing)
        self._sessions_of.setdefault(user_id, set()).add(session_id)
        while len(self._kept) > MAX_KEPT:
            self.forget(next(iter(self._kept)))

    def forget(self, session_id: UUID) -> None:
        entry = self._kept.pop(session_id, None)
        if entry is not None:
            sessions = self._sessions_of[entry[0]]
            sessions.discard(session_id)
            if not sessions:
                del self._sessions_of[entry[0]]

    def forget_user(self, user_id: UUID) -> None:
        for session_id in list(self._sessions_of.get(user_id, ())):
            self.forget(session_id)

    def forget_all(self, why: str) -> None:
        self._epoch += 1
        if self._kept:
            log.info("forgot the standing of %d session(s): %s", len(self._kept), why)
            self._kept.clear()
            self._sessions_of.clear()

    def listen(self, listening: bool, why: str) -> None:
        """The database's notices are heard (True) or not any more (False): either way a read
        begun before is not kept, and while they are not heard, nothing is kept or used."""
        if not listening:
            self.forget_all(why)
        elif not self.listening:
            self._epoch += 1
            log.info("keeping sessions' standings again: %s", why)
        self.listening = listening


class ChangeNotices:
    """The database's notices of standing changes, heard on a connection of its own; what an
    instance keeps is forgotten for the user each names, and all of it when the connection fails.

    The connection is probed every PROBE_SECONDS (a database that stops answering without
    closing it is noticed within about two probes), and made again every RECONNECT_SECONDS
    after a failure, while the instance runs.
    """

    def __init__(self, database_url: str, kept: StandingCache, may_try: Callable[[], bool] = lambda: True):
        self._url = database_url
        self._kept = kept
        # Whether the database may be tried now: not while the identity store's breaker is open
        # (store.py), which promises handshakes that the database is left alone meanwhile.
        self._may_try = may_try
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="standing-notices")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._drop()

    def _heard(self, connection, pid, channel, payload: str) -> None:
        try:
            self._kept.forget_user(UUID(payload))
        except ValueError:
            self._kept.forget_all(f"the database announced a change of {payload!r}")

    def _lost(self, connection) -> None:
        if connection is self._connection:
            self._connection = None
            self._kept.listen(False, NOT_HEARD)

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._kept.listen(False, NOT_HEARD)
            connection.terminate()

    async def _listen(self) -> None:
        while True:
            try:
                if self._connection is None and not self._may_try():
                    await asyncio.sleep(RECONNECT_SECONDS)
                    continue
                if self._connection is None:
                    connection = await asyncpg.connect(self._url, timeout=db.CONNECT_TIMEOUT_SECONDS)
                    self._connection = connection
                    connection.add_termination_listener(self._lost)
                    await connection.add_listener(NOTICES_CHANNEL, self._heard)
                    self._kept.listen(True, "the database's notices of changes are heard")
                async with asyncio.timeout(PROBE_SECONDS):
                    await self._connection.execute("SELECT 1")
                await asyncio.sleep(PROBE_SECONDS)
            except asyncio.CancelledError:
                raise
            except (*db.UNAVAILABLE, asyncpg.PostgresError) as exc:
                if self._connection is not None:
                    log.warning("the database's notices of changes stopped (%s); sessions' standings are "
                                "asked of the database until they are heard again", type(exc).__name__)
                self._drop()
                await asyncio.sleep(RECONNECT_SECONDS)
