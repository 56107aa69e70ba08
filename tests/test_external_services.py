"""The same specification, unchanged, with PostgreSQL and Redis given by DATABASE_URL and REDIS_URL.

Uses the machine's own services when they are reachable (EXTERNAL_POSTGRES_URL and
EXTERNAL_REDIS_URL override where they are), in a throwaway database; skips otherwise.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis

from conftest import run_spec

POSTGRES = os.environ.get("EXTERNAL_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("EXTERNAL_REDIS_URL", "redis://127.0.0.1:6379/0")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
def external_database():
    name = "spec_external_" + secrets.token_hex(4)

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES, timeout=3)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        redis.Redis.from_url(REDIS, socket_timeout=3).ping()
    except (OSError, asyncpg.PostgresError, redis.RedisError) as error:
        pytest.skip(f"no external PostgreSQL/Redis reachable ({error}); set EXTERNAL_POSTGRES_URL / EXTERNAL_REDIS_URL")
    yield _with_database(POSTGRES, name)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_the_specification_passes_on_external_postgres_and_redis(external_database, tmp_path):
    run = run_spec(env={"TARGET_URL": "", "DATABASE_URL": external_database, "REDIS_URL": REDIS},
                   tmp_path=tmp_path)
    assert run.returncode == 0, run.output
    assert "embedded PostgreSQL" not in run.output and "embedded Redis" not in run.output
