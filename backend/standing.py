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
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from uuid import UUID

import redis.asyncio as redis

from .fanout import UNAVAILABLE

log = logging.getLogger(__name__)

# Sessions kept per instance; past this the least recently used is forgotten.
MAX_KEPT = 100_000
# A user's version lives as long as a day without a change or a first handshake.
VERSION_SECONDS = 24 * 3600

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
        # Moves on whenever everything is forgotten: a read begun before is not kept after.
        self._epoch = 0

    def kept(self, user_id: UUID, session_id: UUID) -> Standing | None:
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
        if standing.version is None or epoch != self._epoch:
            return
        self._kept[session_id] = (user_id, standing)
        self._kept.move_to_end(session_id)
        while len(self._kept) > MAX_KEPT:
            self._kept.popitem(last=False)

    def forget(self, session_id: UUID) -> None:
        self._kept.pop(session_id, None)

    def forget_user(self, user_id: UUID) -> None:
        for session_id in [session for session, (user, _) in self._kept.items() if user == user_id]:
            del self._kept[session_id]

    def forget_all(self, why: str) -> None:
        self._epoch += 1
        if self._kept:
            log.info("forgot the standing of %d session(s): %s", len(self._kept), why)
            self._kept.clear()
