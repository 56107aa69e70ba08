"""A loopback listener of the suite's own that counts every connection made to it.

Forged tokens point their key URLs (`jku`, `x5u`, a `kid` that is a URL or runs `curl`)
here. A service that fetches a key an attacker names would connect to it; the count proves
that it never did. It answers nothing useful: a fetched key would already be the defect.
"""

from __future__ import annotations

import asyncio


class KeyUrlListener:
    """Listens on 127.0.0.1 at a free port; ``requests`` counts the connections it saw."""

    def __init__(self) -> None:
        self.requests = 0
        self.first_request: bytes = b""
        self._server: asyncio.base_events.Server | None = None
        self.url = ""

    async def start(self) -> "KeyUrlListener":
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests += 1
        try:
            data = await asyncio.wait_for(reader.read(2048), 1)
            self.first_request = self.first_request or data
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def check_never_asked(self, what: str) -> None:
        """Fail, naming what was being tried, if anything connected to the listener."""
        if self.requests:
            line = self.first_request.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            raise AssertionError(f"the service fetched a key from the attacker's address {self.requests} time(s) "
                                 f"while refusing {what} (first request: {line!r}); a key URL named in a token "
                                 f"must never be fetched")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # The shape of the scenario's connections, so the sweep closes it and the report shows it.
    owner = "the attacker's key server"
    is_open = False  # nothing to fence

    def transcript_text(self, redact) -> str:
        first = self.first_request.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        return redact(f"The attacker's key server at {self.url} was asked "
                      f"{self.requests} time(s)" + (f"; first: {first}" if first else ""))
