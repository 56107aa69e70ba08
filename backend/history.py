"""Each session's recent events, kept in a Redis stream so a client can resume (contract section 6a).

Every event published on a session's channel is also appended, in one Lua script with the
PUBLISH, to the stream `history:events:session:<session_id>` (XADD with an exact MAXLEN,
then XTRIM MINID for the age, and a PEXPIRE so an idle stream goes away). The stream
entry's id becomes the frame's `seq`, prefixed with a tag that names the stream without
naming the session: `<tag>.<ms>-<n>`. Being one script, the order of the stream and the
order of the channel are the same order, on every instance.

A client that reconnects with `last_event_id` is answered in one of three ways:

- its id is in its own session's stream: every entry after it is replayed, in order;
- its id is its own session's but older than anything kept (or the stream has gone): a gap;
- the id is not of its session's stream at all (another session's, or not an id): not found.

Fences and the events of a user's channel are not kept: they carry no `seq`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as redis

from .messages import encode

SESSION_CHANNEL_PREFIX = "events:session:"
# Types published on a session's channel that are not kept: a fence proves the path is
# drained right now, and means nothing to a client that comes back later.
NOT_KEPT = frozenset({"fence"})
STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
TAG_CHARACTERS = 12

# KEYS: the stream. ARGV: channel, frame text (a JSON object, without seq), tag, max entries, age ms.
# Returns the new entry's id. The PUBLISH carries the frame with its seq spliced in.
APPEND_AND_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], '*', 'frame', ARGV[2])
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[5])
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', oldest))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[1], string.sub(ARGV[2], 1, -2) .. ',"seq":"' .. ARGV[3] .. '.' .. id .. '"}')
return id
"""

# KEYS: the stream. ARGV: the last id the client saw, age ms. Entries older than the age go
# first, by Redis's clock. Returns {"replay", entries after the id} when the id is kept, else
# {"missing", the oldest entry kept or false}.
READ_AFTER = """
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2])
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', oldest))
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 1 then
  return {'replay', redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')}
end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then
  return {'missing', false}
end
return {'missing', first[1][1]}
"""


@dataclass(frozen=True)
class Retention:
    """How much of a session's history is kept for resuming: a count and an age."""

    events: int = 100
    seconds: float = 300

    @property
    def milliseconds(self) -> int:
        return max(1, int(self.seconds * 1000))

    def document(self) -> dict[str, Any]:
        return {"query_parameter": "last_event_id", "retained_events": self.events,
                "retained_seconds": self.seconds}


@dataclass
class Resumption:
    """What a resuming socket is sent before its live events: a replay, a gap, or not found."""

    outcome: str  # "replay", "gap" or "not_found"
    frames: list[str] = field(default_factory=list)  # replayed frame texts, seq included, in order
    last: tuple[int, int] | None = None  # the stream position the socket has been brought up to


def stream_key(channel: str) -> str:
    return "history:" + channel


def keeps(channel: str, frame: dict[str, Any]) -> bool:
    return channel.startswith(SESSION_CHANNEL_PREFIX) and frame.get("type") not in NOT_KEPT


def tag(channel: str) -> str:
    """Names the stream in every `seq` without naming the session (a digest of the channel)."""
    return hashlib.sha256(b"resume:" + channel.encode()).hexdigest()[:TAG_CHARACTERS]


def with_seq(text: str, seq: str) -> str:
    """The frame text with its `seq` as the last field (as the Lua script writes it)."""
    return text[:-1] + ',"seq":"' + seq + '"}'


def position(stream_id: str) -> tuple[int, int] | None:
    match = STREAM_ID.fullmatch(stream_id)
    return (int(match[1]), int(match[2])) if match else None


def frame_position(text: str) -> tuple[int, int] | None:
    """The stream position of a frame's `seq`, or None for a frame that carries none."""
    if '"seq":"' not in text:
        return None
    try:
        seq = json.loads(text).get("seq")
    except (ValueError, AttributeError):
        return None
    return position(seq.partition(".")[2]) if isinstance(seq, str) else None


class History:
    """The session streams in Redis, shared by every instance."""

    def __init__(self, client: redis.Redis, retention: Retention):
        self.redis = client
        self.retention = retention
        self._append = client.register_script(APPEND_AND_PUBLISH)
        self._read = client.register_script(READ_AFTER)

    async def publish(self, channel: str, frame: dict[str, Any]) -> None:
        """Keep the event in its session's stream and publish it with its `seq`, in one step."""
        await self._append(keys=[stream_key(channel)], args=[
            channel, encode(frame), tag(channel), self.retention.events, self.retention.milliseconds])

    async def resume(self, channel: str, last_event_id: str) -> Resumption:
        """What a socket of ``channel``'s session that last saw ``last_event_id`` has missed."""
        claimed_tag, _, stream_id = last_event_id.partition(".")
        claimed = position(stream_id)
        if claimed_tag != tag(channel) or claimed is None:
            return Resumption("not_found")
        outcome, found = await self._read(keys=[stream_key(channel)],
                                          args=[stream_id, self.retention.milliseconds])
        if outcome == "replay":
            frames = [with_seq(fields["frame"], f"{claimed_tag}.{entry_id}") for entry_id, fields in _entries(found)]
            last = position(_entries(found)[-1][0]) if found else claimed
            return Resumption("replay", frames, last)
        oldest = position(found) if found else None
        if oldest is None or claimed < oldest:
            return Resumption("gap", last=claimed)
        return Resumption("not_found")  # within what is kept, yet not kept: never this stream's


def _entries(found: list) -> list[tuple[str, dict[str, str]]]:
    """XRANGE's answer from a script: [[id, [field, value, ...]], ...] as (id, {field: value})."""
    return [(entry_id, dict(zip(values[::2], values[1::2]))) for entry_id, values in found]
