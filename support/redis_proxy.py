"""A cuttable link between one backend instance and its Redis (the event fan-out).

The same proxy as the database's (support/store_proxy.py), in front of Redis: RES-02 cuts it
while the instance serves sockets, and restores it to see the instance subscribe again.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .store_proxy import LinkProxy


class RedisProxy(LinkProxy):
    """The link to the instance's Redis: ``redis://host:port/db`` or ``unix:///path``."""

    def __init__(self, redis_url: str):
        parts = urlsplit(redis_url)
        if parts.scheme == "unix":
            super().__init__(parts.path, ("127.0.0.1", 6379))
            self._database = "0"
        else:
            super().__init__(None, (parts.hostname or "127.0.0.1", parts.port or 6379))
            self._database = parts.path.lstrip("/") or "0"
        self._password = parts.password

    @property
    def redis_url(self) -> str:
        """The same Redis, reached through the proxy."""
        credentials = f":{self._password}@" if self._password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/{self._database}"
