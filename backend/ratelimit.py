"""The message rate limit (contract section 5): per user, across sockets and instances.

A sliding window in Redis: one sorted set per user, `ratelimit:user:<user_id>`, holds the
times (Redis's clock, milliseconds) of the messages counted in the last minute. One Lua
script forgets the old ones, then counts the new message or says how long until it fits.
A refused message is not counted, so a client that waits as told gets through.
"""

from __future__ import annotations

import math
import uuid
from uuid import UUID

import redis.asyncio as redis

WINDOW_MS = 60_000

# KEYS: the user's window. ARGV: limit, window (ms), a unique member.
# Returns 0 when counted, else the milliseconds until the oldest counted message leaves.
CHECK = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - ms)
end
redis.call('ZADD', KEYS[1], ms, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


def window_key(user_id: UUID) -> str:
    return f"ratelimit:user:{user_id}"


class RateLimiter:
    def __init__(self, client: redis.Redis):
        self._check = client.register_script(CHECK)

    async def retry_after(self, user_id: UUID, messages_per_minute: int) -> int | None:
        """None when this message is within the limit (it is counted), else whole seconds to wait (>= 1).

        The limit is the asking socket's plan's: sockets opened before a plan change keep theirs.
        """
        wait_ms = await self._check(keys=[window_key(user_id)], args=[messages_per_minute, WINDOW_MS, uuid.uuid4().hex])
        return math.ceil(int(wait_ms) / 1000) if int(wait_ms) > 0 else None
