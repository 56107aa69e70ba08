"""The cuttable links of the outage scenarios (support/store_proxy.py, support/redis_proxy.py) do what they say."""

from __future__ import annotations

import asyncio

from support.redis_proxy import RedisProxy
from support.store_proxy import LinkProxy, StoreProxy


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _read(reader: asyncio.StreamReader) -> bytes:
    """What came back; b"" when the link dropped the connection (closed or reset)."""
    try:
        return await asyncio.wait_for(reader.read(1024), 2)
    except ConnectionResetError:
        return b""


async def _round_trip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await _read(reader)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


def test_an_armed_link_passes_traffic_until_the_statement_then_stays_cut_until_restored():
    async def scenario() -> None:
        server = await _echo_server()
        link = await LinkProxy(None, ("127.0.0.1", server.sockets[0].getsockname()[1])).start()
        try:
            assert await _round_trip(link.port, b"SELECT 1") == b"SELECT 1"
            link.cut_when_sent(r"insert\s+into\s+user_sessions")
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            writer.write(b"SELECT id FROM users")
            assert await _read(reader) == b"SELECT id FROM users"
            writer.write(b"WITH u AS (...) INSERT INTO  user_sessions VALUES (1)")
            assert await _read(reader) == b""  # dropped, the statement undelivered
            assert link.fired == b"INSERT INTO  user_sessions" and link.cut_off
            assert await _round_trip(link.port, b"SELECT 2") == b""  # refused while cut
            link.restore()
            assert await _round_trip(link.port, b"SELECT 3") == b"SELECT 3"
        finally:
            await link.close()
            server.close()

    asyncio.run(scenario())


def test_the_proxies_name_the_same_database_and_redis_through_themselves():
    async def urls() -> tuple[str, str]:
        store = await StoreProxy("postgresql://postgres:pw@/postgres?host=/tmp/pg").start()
        redis = await RedisProxy("unix:///tmp/redis.sock").start()
        try:
            return store.database_url.replace(str(store.port), "PORT"), redis.redis_url.replace(str(redis.port), "PORT")
        finally:
            await store.close()
            await redis.close()

    assert asyncio.run(urls()) == ("postgresql://postgres:pw@127.0.0.1:PORT/postgres", "redis://127.0.0.1:PORT/0")
