"""Watches the target's event fan-out in Redis (docs/contract.md, section 6)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as redis

CHANNEL_PATTERN = "events:*"


def session_channel(session_id: str) -> str:
    """The channel of one session's events (docs/contract.md, section 6)."""
    return f"events:session:{session_id}"


class RedisNotConfigured(AssertionError):
    def __init__(self) -> None:
        super().__init__("this step watches the target's Redis: set REDIS_URL (or -D redis_url=...)")


@dataclass(frozen=True)
class Publication:
    channel: str
    data: str
    at: float


class ChannelRecorder:
    """Records every message published on the event channels, in the order Redis delivers them."""

    def __init__(self, client: redis.Redis | None):
        self._client = client
        self._pubsub = None
        self._task: asyncio.Task | None = None
        self.publications: list[Publication] = []
        self._changed = asyncio.Event()

    @classmethod
    async def start(cls, url: str | None) -> "ChannelRecorder":
        recorder = cls(redis.from_url(url, decode_responses=True) if url else None)
        if recorder._client is not None:
            recorder._pubsub = recorder._client.pubsub()
            await recorder._pubsub.psubscribe(CHANNEL_PATTERN)
            recorder._task = asyncio.get_running_loop().create_task(recorder._listen())
        return recorder

    async def _listen(self) -> None:
        async for message in self._pubsub.listen():
            if message["type"] == "pmessage":
                self.publications.append(Publication(message["channel"], message["data"], time.time()))
                self._changed.set()

    def _require(self) -> None:
        if self._client is None:
            raise RedisNotConfigured()

    async def publish(self, channel: str, data: str) -> int:
        """Publish as if the target had (used only to plant a leak on purpose)."""
        self._require()
        return await self._client.publish(channel, data)

    async def wait_until_seen(self, text: str, timeout: float) -> int:
        """Wait until a publication containing ``text`` has been recorded; return its index."""
        self._require()
        deadline = time.monotonic() + timeout
        while True:
            for index, publication in enumerate(self.publications):
                if text in publication.data:
                    return index
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"nothing containing {text!r} was published on {CHANNEL_PATTERN} "
                                     f"within {timeout:g} s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def channels_carrying(self, text: str) -> set[str]:
        return {p.channel for p in self.publications if text in p.data}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()
