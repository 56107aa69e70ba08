"""Read-only checks of the target's PostgreSQL (tables of docs/contract.md, section 8)."""

from __future__ import annotations

import asyncpg


class DatabaseNotConfigured(AssertionError):
    def __init__(self) -> None:
        super().__init__("this step reads the target's database: set DATABASE_URL (or -D database_url=...)")


class DatabaseProbe:
    """A small pool and the few queries the specification asks of the target's database."""

    def __init__(self, pool: asyncpg.Pool | None):
        self._pool = pool

    @classmethod
    async def connect(cls, url: str | None) -> "DatabaseProbe":
        if not url:
            return cls(None)
        return cls(await asyncpg.create_pool(url, min_size=1, max_size=4))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def _fetch(self, query: str, *args) -> list[asyncpg.Record]:
        if self._pool is None:
            raise DatabaseNotConfigured()
        return await self._pool.fetch(query, *args)

    async def sessions_of(self, user_id: str) -> list[asyncpg.Record]:
        return await self._fetch(
            "SELECT id::text AS id, device_type, revoked_at FROM user_sessions "
            "WHERE user_id = $1::uuid ORDER BY created_at", user_id)

    async def executions_for(self, user_id: str, request_id: str) -> list[asyncpg.Record]:
        return await self._fetch(
            "SELECT id::text AS id, user_id::text AS user_id, session_id::text AS session_id, "
            "agent, tool, status, started_at, completed_at FROM agent_executions "
            "WHERE user_id = $1::uuid AND request_id = $2", user_id, request_id)

    async def user(self, user_id: str) -> asyncpg.Record | None:
        rows = await self._fetch("SELECT id::text AS id, email, plan FROM users WHERE id = $1::uuid", user_id)
        return rows[0] if rows else None

    async def thread(self, thread_id: str) -> asyncpg.Record | None:
        rows = await self._fetch(
            "SELECT id::text AS id, user_id::text AS user_id, session_id::text AS session_id, scope, title "
            "FROM user_threads WHERE id::text = $1", thread_id)
        return rows[0] if rows else None

    async def executions_of(self, user_id: str) -> list[asyncpg.Record]:
        return await self._fetch(
            "SELECT id::text AS id, request_id, status FROM agent_executions WHERE user_id = $1::uuid", user_id)

    async def user_by_email(self, email: str) -> asyncpg.Record | None:
        """The account registered with ``email`` (compared case-insensitively), or None."""
        rows = await self._fetch("SELECT id::text AS id, email, plan FROM users WHERE lower(email) = lower($1)", email)
        return rows[0] if rows else None

    async def thread_messages(self, thread_id: str) -> list[asyncpg.Record]:
        return await self._fetch(
            "SELECT text, created_at FROM thread_messages WHERE thread_id::text = $1 ORDER BY created_at", thread_id)
