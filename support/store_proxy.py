"""A cuttable link between one backend instance and its PostgreSQL, to make outages real.

The identity-store requirement is about a database that becomes unreachable while the
service runs. The embedded default starts one instance whose database connection runs
through this proxy; cutting it drops every open connection and refuses new ones, as a
network partition would, and restoring it lets connections through again.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit, urlunsplit


class StoreProxy:
    """Forwards TCP connections on a loopback port to a PostgreSQL server; can be cut."""

    def __init__(self, database_url: str):
        parts = urlsplit(database_url)
        query = parse_qs(parts.query)
        socket_dir = query.get("host", [None])[0]
        self._unix_path = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir else None
        self._tcp = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._parts = parts
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.cut_off = False
        self.attempts = 0  # connections the backend tried to open through the proxy
        self.instance_url: str | None = None  # the backend instance that uses this link

    async def start(self) -> "StoreProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def database_url(self) -> str:
        """The same database, reached through the proxy."""
        port = self._server.sockets[0].getsockname()[1]
        credentials = self._parts.netloc.rsplit("@", 1)[0] + "@" if "@" in self._parts.netloc else ""
        return urlunsplit((self._parts.scheme, f"{credentials}127.0.0.1:{port}", self._parts.path or "/postgres", "", ""))

    def cut(self) -> None:
        self.cut_off = True
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    def restore(self) -> None:
        self.cut_off = False

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.attempts += 1
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
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer),
                             return_exceptions=True)
        for writer in (client_writer, server_writer):
            self._links.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
