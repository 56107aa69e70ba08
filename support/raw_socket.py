"""A deliberately impolite client, for what a well-behaved WebSocket library will not do.

The heartbeat and handshake-timeout requirements are about clients that stop answering or
never finish: a library answers pings by itself and always completes its handshake. This
client speaks just enough of RFC 6455 over a plain TCP stream to do neither.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PING, CLOSE = 0x9, 0x8


@dataclass
class SilentClient:
    """A socket that completes the upgrade, then reads frames and never answers a ping."""

    url: str
    headers: dict[str, str]
    pings: list[float] = field(default_factory=list)  # monotonic arrival times
    opened_at: float = 0.0
    closed_at: float | None = None  # when the server ended the connection; None if it never did
    close_code: int | None = None

    async def run(self, timeout: float) -> None:
        """Upgrade, then read until the server closes the connection or ``timeout`` passes.

        ``closed_at`` stays None when the server was still holding the connection open.
        """
        parts = urlsplit(self.url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            request = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket",
                       "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
                       *(f"{name}: {value}" for name, value in self.headers.items())]
            writer.write(("\r\n".join(request) + "\r\n\r\n").encode())
            status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            if not status.startswith(b"HTTP/1.1 101"):
                raise AssertionError(f"the silent client's handshake was refused: {status.splitlines()[0]!r}")
            self.opened_at = time.monotonic()
            await asyncio.wait_for(self._read_frames(reader), timeout)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_at = self.closed_at or time.monotonic()  # dropped without a close frame
        except asyncio.TimeoutError:
            pass  # still open after ``timeout``: the server never let go
        finally:
            writer.close()

    async def _read_frames(self, reader: asyncio.StreamReader) -> None:
        while True:
            head = await reader.readexactly(2)
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(length)  # server frames are never masked
            if opcode == PING:
                self.pings.append(time.monotonic())
            elif opcode == CLOSE:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.closed_at = time.monotonic()
                return


async def idle_connection(url: str, send: bytes, timeout: float) -> float | None:
    """Open TCP, send ``send`` (perhaps nothing, perhaps half a request), then wait.

    Returns how many seconds passed until the server closed the connection, or None if it
    was still open after ``timeout``.
    """
    parts = urlsplit(url)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    try:
        if send:
            writer.write(send)
            await writer.drain()
        try:
            await asyncio.wait_for(reader.read(), timeout)  # returns at EOF
        except asyncio.TimeoutError:
            return None
        except ConnectionError:
            pass
        return time.monotonic() - started
    finally:
        writer.close()


def upgrade_request(url: str, headers: dict[str, str]) -> bytes:
    """A complete RFC 6455 upgrade request for ``url`` with ``headers``."""
    parts = urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def abandon_upgrade(url: str, headers: dict[str, str]) -> None:
    """Send a complete, valid upgrade request and hang up at once, before the server answers.

    The server authenticates and may register the socket before it finds the client gone:
    what it registered must be let go as for any other disconnect.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    try:
        writer.write(upgrade_request(url, headers))
        await writer.drain()
    finally:
        writer.transport.abort()  # a reset, not a polite close: the client vanished
