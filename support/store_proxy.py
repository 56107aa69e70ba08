"""Cuttable links between one backend instance and its PostgreSQL or Redis, to make outages real.

The resilience requirements are about a database or a Redis that becomes unreachable while the
service runs. The embedded default starts one instance whose database and Redis connections
run through these proxies; cutting one drops every open connection and refuses new ones, as a
network partition would, and restoring it lets connections through again.

A cut can also be armed for a chosen moment: ``cut_when_sent(pattern)`` lets traffic through
until the service sends a statement matching ``pattern`` (say, the INSERT that writes a new
session), and cuts the link right then, with that statement undelivered. That is how an outage
lands in the middle of an operation rather than before it.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlsplit, urlunsplit


class LinkProxy:
    """Forwards TCP connections on a loopback port to a server (TCP or Unix socket); can be cut."""

    def __init__(self, unix_path: str | None, tcp: tuple[str, int]):
        self._unix_path = unix_path
        self._tcp = tcp
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task] = set()  # one per link, ended by close()
        self._trigger: re.Pattern[bytes] | None = None
        self.cut_off = False
        self.attempts = 0  # connections the backend tried to open through the proxy
        self.fired: bytes | None = None  # what the service sent when an armed cut fell
        self.instance_url: str | None = None  # the backend instance that uses this link

    async def start(self):
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        self.cut_off = True
        self._trigger = None
        self._drop_links()

    def restore(self) -> None:
        self.cut_off = False
        self._trigger = None

    def cut_when_sent(self, pattern: str) -> None:
        """Cut the link the moment the service sends something matching ``pattern`` (a regex,
        case-insensitive), before it reaches the server.

        Open connections are dropped first: a client that prepared the statement earlier
        would send only its name, and new connections send its text again.
        """
        self.fired = None
        self._trigger = re.compile(pattern.encode(), re.IGNORECASE)
        self._drop_links()

    def _drop_links(self) -> None:
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.attempts += 1
        serving = asyncio.current_task()
        self._serving.add(serving)
        serving.add_done_callback(self._serving.discard)
        if self.cut_off:
            client_writer.transport.abort()
            return
        try:
            if self._unix_path:
                server_reader, server_writer = await asyncio.open_unix_connection(self._unix_path)
            else:
                server_reader, server_writer = await asyncio.open_connection(*self._tcp)
        except OSError:
            client_writer.transport.abort()
            return
        self._links.update((client_writer, server_writer))
        await asyncio.gather(self._pipe(client_reader, server_writer, watched=True),
                             self._pipe(server_reader, client_writer), return_exceptions=True)
        for writer in (client_writer, server_writer):
            self._links.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, watched: bool = False) -> None:
        tail = b""  # the end of the last chunk, so a statement split over two chunks is still seen
        while data := await reader.read(65536):
            if watched and self._trigger is not None:
                found = self._trigger.search(tail + data)
                if found:
                    self.fired = found.group(0)
                    self.cut()
                    return
                tail = data[-256:]
            writer.write(data)
            await writer.drain()
        writer.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # Each link's task ends now that its ends are aborted. Cancelled instead (by the loop's
        # own close), Python 3.11's streams would print a traceback for each (fixed in 3.12).
        if self._serving:
            await asyncio.wait(self._serving, timeout=2)


class StoreProxy(LinkProxy):
    """The link to the instance's PostgreSQL (the identity store)."""

    def __init__(self, database_url: str):
        parts = urlsplit(database_url)
        query = parse_qs(parts.query)
        socket_dir = query.get("host", [None])[0]
        super().__init__(f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir else None,
                         (parts.hostname or "127.0.0.1", parts.port or 5432))
        self._parts = parts

    @property
    def database_url(self) -> str:
        """The same database, reached through the proxy."""
        credentials = self._parts.netloc.rsplit("@", 1)[0] + "@" if "@" in self._parts.netloc else ""
        return urlunsplit((self._parts.scheme, f"{credentials}127.0.0.1:{self.port}", self._parts.path or "/postgres",
                           "", ""))
