"""The connection registry: every open socket of every instance, in Redis, and the per-user limit.

One sorted set per user, `connections:user:<user_id>`, holds the ids of the user's sockets
scored by accept time (Redis's clock, in microseconds, so every instance orders them alike).
One Lua script adds a socket and pops the oldest beyond the limit in a single step, so
handshakes racing on several instances always leave exactly the limit registered, and
publishes the evicted ids on `control:user:<user_id>`. That channel is internal: an instance
subscribes to it for the users it serves, closes its evicted sockets with 4008, and never
forwards it to a client. A revoked session is announced on the same channel, and every
instance closes that session's sockets with 4009 (contract section 12). Every instance
listens to all of these channels at once, with one pattern subscription made at start
(control messages are few), so a handshake subscribes to none.

The script also checks the version of the user's standing a handshake opens with
(standing.py): a socket is counted only under the plan and role its user has now.

A crashed instance cannot remove its entries. Every instance therefore stamps its live
entries in a second sorted set, `connections-seen:user:<user_id>`, every REFRESH_SECONDS;
the script drops entries not stamped for STALE_SECONDS before it counts, and both keys
expire when nothing stamps them any more. The refresh also reports entries that are gone
(an eviction whose message was lost): their sockets are closed with 4008 too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import redis.asyncio as redis

from .fanout import UNAVAILABLE, Fanout, Sink
from .standing import StandingCache, version_key
from .tokens import Identity

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10
# A revocation Redis could not carry is announced again this often until it goes out.
ANNOUNCE_RETRY_SECONDS = 0.25
STALE_SECONDS = 30
REVOKED = -1  # the register script's answer when the session's revocation mark is set
STALE = -2  # its answer when the user's standing has changed since the handshake read it

# KEYS: connections, seen, the session's revocation mark, the user's standing version.
# ARGV: connection id, limit, stale seconds, control channel, the standing version the
# socket opens with ('' when it was read from the database too late to be checked).
# Returns the evicted connection ids (possibly the new one, if it lost a tie); REVOKED or
# STALE, registering nothing, when the session was revoked or the standing changed meanwhile.
REGISTER = """
if redis.call('EXISTS', KEYS[3]) == 1 then
  return -1
end
if ARGV[5] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[5] then
  return -2
end
local now = redis.call('TIME')
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', tonumber(now[1]) - tonumber(ARGV[3]))
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
-- Built as a string: a Lua number would print 16 digits as 1.7e+15 and lose the order.
redis.call('ZADD', KEYS[1], now[1] .. string.format('%06d', tonumber(now[2])), ARGV[1])
redis.call('ZADD', KEYS[2], now[1], ARGV[1])
local evicted = {}
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if excess > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[1], excess)
  for i = 1, #popped, 2 do
    evicted[#evicted + 1] = popped[i]
    redis.call('ZREM', KEYS[2], popped[i])
  end
  redis.call('PUBLISH', ARGV[4], cjson.encode({evict = evicted}))
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return evicted
"""

# KEYS: connections, seen. ARGV: stale seconds, then connection ids. Returns the ids that are gone.
REFRESH = """
local now = redis.call('TIME')[1]
local gone = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[2], now, ARGV[i])
  else
    gone[#gone + 1] = ARGV[i]
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return gone
"""


# KEYS: connections, seen. ARGV: connection id. One step, one command: cheaper than a MULTI.
UNREGISTER = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
"""


def connections_key(user_id: UUID) -> str:
    return f"connections:user:{user_id}"


def seen_key(user_id: UUID) -> str:
    return f"connections-seen:user:{user_id}"


CONTROL_PREFIX = "control:user:"


def control_channel(user_id: UUID) -> str:
    return f"{CONTROL_PREFIX}{user_id}"


def revoked_key(session_id: UUID) -> str:
    return f"revoked:session:{session_id}"


class SessionRevoked(Exception):
    """The session was revoked between the handshake's database check and its registration."""


class StandingChanged(Exception):
    """The user's plan, role or sessions changed since the handshake read them; nothing was counted."""


@dataclass
class Entry:
    user_id: UUID
    evict: Callable[[], None]
    sink: Sink
    counted: bool = False  # the register script has run; until then the refresh leaves it alone


class Registry:
    def __init__(self, fanout: Fanout, revocation_seconds: int, standing: StandingCache):
        self._fanout = fanout
        self._standing = standing
        self._redis: redis.Redis = fanout.redis
        # How long a revocation stays marked for handshakes under way: as long as any access
        # token of the session could still verify.
        self._revocation_seconds = revocation_seconds
        self._register = self._redis.register_script(REGISTER)
        self._refresh = self._redis.register_script(REFRESH)
        self._unregister = self._redis.register_script(UNREGISTER)
        self._local: dict[str, Entry] = {}
        self._refresher: asyncio.Task[None] | None = None
        # Revocations not yet announced because Redis was out of reach: session -> user.
        self._unannounced: dict[UUID, UUID] = {}
        # Users whose plan or role changed while Redis was out of reach.
        self._unversioned: set[UUID] = set()
        # The standing version each socket under way opens with (see opens_with).
        self._versions: dict[str, str] = {}
        self._announcer: asyncio.Task[None] | None = None

    @property
    def open(self) -> int:
        """Sockets this instance holds."""
        return len(self._local)

    def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_forever(), name="registry-refresh")

    async def close(self) -> None:
        tasks = [task for task in (self._refresher, self._announcer) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def register(self, connection_id: str, identity: Identity, limit: int, evict: Callable[[], None],
                       revoked: Callable[[], None]) -> None:
        """Count a new socket; the user's oldest beyond `limit` get `evict()`ed, wherever they are.

        Listens to the user's control channel first (heard through the pattern subscription,
        so this asks Redis nothing), so no eviction of this socket and no revocation of its
        session, decided on any instance, can pass unheard; one
        announced before that is found marked, and raises SessionRevoked. A standing
        version given with opens_with that is no longer the user's raises StandingChanged.
        """
        user_id, session = identity.user_id, str(identity.session_id)
        version = self._versions.pop(connection_id, "")

        def sink(text: str) -> None:
            message = _control(text)
            if connection_id in message.get("evict", ()):
                evict()
            if message.get("revoke") == session:
                revoked()

        entry = self._local[connection_id] = Entry(user_id, evict, sink)
        try:
            await self._fanout.subscribe(control_channel(user_id), sink)
            evicted = await self._fanout.handshakes.evalsha(
                self._register,
                keys=[connections_key(user_id), seen_key(user_id), revoked_key(identity.session_id),
                      version_key(user_id)],
                args=[connection_id, limit, STALE_SECONDS, control_channel(user_id), version],
            )
            if evicted == REVOKED:
                self._standing.forget(identity.session_id)
                raise SessionRevoked(session)
            if evicted == STALE:
                self._standing.forget_user(user_id)
                raise StandingChanged(session)
        except (redis.RedisError, *UNAVAILABLE):
            self._standing.forget_all("Redis failed during a handshake")
            await self.unregister(connection_id)
            raise
        except BaseException:
            # Also when cancelled (the handshake timed out): the script may have run anyway.
            await self.unregister(connection_id)
            raise
        entry.counted = True
        if connection_id in evicted:
            evict()

    def opens_with(self, connection_id: str, version: str | None) -> None:
        """The standing version the socket's plan and role were read under: its registration
        checks that it is still the user's (None: read too late to check, nothing to compare)."""
        if version is not None:
            self._versions[connection_id] = version

    async def revoke_session(self, user_id: UUID, session_id: UUID) -> None:
        """Have every instance close the session's sockets (4009), and refuse the handshakes under way.

        Marked before it is announced: a handshake that registers after the mark finds it,
        one that registered before hears the announcement. The user's standing version moves
        on in the same step, so no instance opens a socket with what it kept of the session.
        """
        self._standing.forget(session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(revoked_key(session_id), 1, ex=self._revocation_seconds)
            await self._standing.move_on(user_id, client=pipe)
            pipe.publish(control_channel(user_id), json.dumps({"revoke": str(session_id)}))
            await pipe.execute()

    async def standing_changed(self, user_id: UUID) -> None:
        """The user's plan or role changed in the database: no instance opens a socket with the old one.

        While Redis is out of reach this instance forgets its own at once and moves the
        version on as soon as Redis answers again.
        """
        self._standing.forget_user(user_id)
        try:
            await self._standing.move_on(user_id)
        except (redis.RedisError, *UNAVAILABLE) as exc:
            log.warning("could not move on the standing version of user %s yet (%s); will once Redis answers",
                        user_id, type(exc).__name__)
            self._unversioned.add(user_id)
            self._announce_soon()

    def revoke_later(self, user_id: UUID, session_id: UUID) -> None:
        """Redis could not carry a revocation: close the session's sockets here at once, and
        announce it to every instance (and mark it for handshakes) as soon as Redis answers again.
        """
        announcement = json.dumps({"revoke": str(session_id)})
        self._standing.forget_user(user_id)
        for entry in list(self._local.values()):
            if entry.user_id == user_id:
                entry.sink(announcement)
        self._unannounced[session_id] = user_id
        self._announce_soon()

    def _announce_soon(self) -> None:
        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.create_task(self._announce_unannounced(), name="registry-announce")

    async def _announce_unannounced(self) -> None:
        while self._unannounced or self._unversioned:
            await asyncio.sleep(ANNOUNCE_RETRY_SECONDS)
            try:
                for session_id, user_id in list(self._unannounced.items()):
                    await self.revoke_session(user_id, session_id)
                    del self._unannounced[session_id]
                    log.info("announced the revocation of session %s now that Redis answers again", session_id)
                for user_id in list(self._unversioned):
                    await self._standing.move_on(user_id)
                    self._unversioned.discard(user_id)
            except (redis.RedisError, *UNAVAILABLE):
                continue  # still out of reach: all of them wait for the next round

    async def unregister(self, connection_id: str) -> None:
        self._versions.pop(connection_id, None)
        entry = self._local.pop(connection_id, None)
        if entry is None:
            return
        try:
            # On the connection that counted it: after its register script, even one cut short.
            await self._fanout.handshakes.evalsha(self._unregister, keys=[connections_key(entry.user_id),
                                                                          seen_key(entry.user_id)], args=[connection_id])
        except (redis.RedisError, *UNAVAILABLE) as exc:
            # Not stamped any more, the entry is dropped after STALE_SECONDS.
            log.warning("could not remove connection %s from the registry: %s", connection_id, exc)
        await self._fanout.unsubscribe(control_channel(entry.user_id), entry.sink)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
            except (redis.RedisError, *UNAVAILABLE) as exc:
                log.warning("could not refresh the connection registry: %s", exc)

    async def refresh(self) -> None:
        """Stamp every local entry as alive; evict the sockets whose entries are gone."""
        by_user: dict[UUID, list[str]] = {}
        for connection_id, entry in self._local.items():
            if entry.counted:
                by_user.setdefault(entry.user_id, []).append(connection_id)
        if not by_user:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id, ids in by_user.items():
                await self._refresh(keys=[connections_key(user_id), seen_key(user_id)], args=[STALE_SECONDS, *ids],
                                    client=pipe)
            results = await pipe.execute()
        for gone in results:
            for connection_id in gone:
                entry = self._local.get(connection_id)
                if entry is not None:
                    log.info("connection %s left the registry unnoticed; closing it", connection_id)
                    entry.evict()


def _control(text: str) -> dict[str, Any]:
    """A control message: {"evict": [connection ids]} or {"revoke": session id}; {} if garbled."""
    try:
        message = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(message, dict) or not isinstance(message.get("evict", []), list):
        return {}
    return message
