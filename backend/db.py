"""PostgreSQL: the connection pool, migrations, and every query the backend runs."""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import UUID

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Errors that mean PostgreSQL cannot be reached right now, as opposed to a bad query.
UNAVAILABLE = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError, asyncpg.InterfaceError,
)
# Any fixed 64-bit key will do; every instance must use the same one.
MIGRATION_LOCK_KEY = 0x636861745F6D6967  # "chat_mig"


class EmailTaken(Exception):
    """A user with this email (compared case-insensitively) already exists."""


async def connect(database_url: str) -> asyncpg.Pool:
    """Apply pending migrations, then open the pool the request handlers share."""
    await migrate(database_url)
    return await asyncpg.create_pool(database_url, min_size=1, max_size=10, command_timeout=10)


async def migrate(database_url: str) -> None:
    """Apply migrations/NNNN_*.sql in order, each once, recorded in schema_migrations."""
    conn = await asyncpg.connect(database_url)
    try:
        # Session-level lock: a second instance starting at the same time waits here,
        # then finds the migrations applied. Closing the connection releases it.
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")):
            if path.stem in applied:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
            log.info("applied migration %s", path.stem)
    finally:
        await conn.close()


async def create_user(
    pool: asyncpg.Pool, *, email: str, password_hash: str, display_name: str, plan: str,
    device_type: str, refresh_token_hash: str,
) -> tuple[UUID, UUID]:
    """Create a user and its first session in one statement; return (user_id, session_id)."""
    try:
        row = await pool.fetchrow(
            """
            WITH new_user AS (
                INSERT INTO users (email, password_hash, display_name, plan)
                VALUES ($1, $2, $3, $4) RETURNING id
            )
            INSERT INTO user_sessions (user_id, device_type, refresh_token_hash)
            SELECT id, $5, $6 FROM new_user
            RETURNING user_id, id
            """,
            email, password_hash, display_name, plan, device_type, refresh_token_hash,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "users_email_unique":
            raise EmailTaken(email) from None
        raise
    return row["user_id"], row["id"]


async def find_user(pool: asyncpg.Pool, email: str) -> asyncpg.Record | None:
    """The user's id and password hash, or None."""
    return await pool.fetchrow("SELECT id, password_hash FROM users WHERE lower(email) = lower($1)", email)


async def create_session(pool: asyncpg.Pool, user_id: UUID, device_type: str, refresh_token_hash: str) -> UUID:
    return await pool.fetchval(
        "INSERT INTO user_sessions (user_id, device_type, refresh_token_hash) VALUES ($1, $2, $3) RETURNING id",
        user_id, device_type, refresh_token_hash,
    )


async def touch_session(pool: asyncpg.Pool, user_id: UUID, session_id: UUID) -> bool:
    """True if the session exists, belongs to the user and is not revoked; records the visit."""
    found = await pool.fetchval(
        "UPDATE user_sessions SET last_seen_at = now()"
        " WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id",
        session_id, user_id,
    )
    return found is not None


async def start_execution(
    pool: asyncpg.Pool, *, user_id: UUID, session_id: UUID, request_id: str, agent: str, tool: str,
) -> UUID:
    """Record a running agent execution; its id is the run_id clients see."""
    return await pool.fetchval(
        "INSERT INTO agent_executions (user_id, session_id, request_id, agent, tool, status)"
        " VALUES ($1, $2, $3, $4, $5, 'running') RETURNING id",
        user_id, session_id, request_id, agent, tool,
    )


async def finish_execution(pool: asyncpg.Pool, run_id: UUID, status: str, error: str | None = None) -> None:
    await pool.execute(
        "UPDATE agent_executions SET status = $2, error = $3, completed_at = now() WHERE id = $1",
        run_id, status, error,
    )


async def create_thread(
    pool: asyncpg.Pool, *, user_id: UUID, session_id: UUID | None, scope: str, title: str,
) -> UUID:
    """A user-wide thread has no session; a session thread belongs to the creating session."""
    return await pool.fetchval(
        "INSERT INTO user_threads (user_id, session_id, scope, title) VALUES ($1, $2, $3, $4) RETURNING id",
        user_id, session_id, scope, title,
    )


async def visible_thread(pool: asyncpg.Pool, thread_id: UUID, user_id: UUID, session_id: UUID) -> asyncpg.Record | None:
    """The thread if this user and session may see it, else None.

    One query for every refusal, so a missing thread and someone else's look alike.
    """
    return await pool.fetchrow(
        "SELECT id, scope, title, session_id FROM user_threads"
        " WHERE id = $1 AND user_id = $2 AND (scope = 'user' OR session_id = $3)",
        thread_id, user_id, session_id,
    )


async def thread_messages(pool: asyncpg.Pool, thread_id: UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT text, created_at FROM thread_messages WHERE thread_id = $1 ORDER BY created_at, id", thread_id
    )


async def add_thread_message(pool: asyncpg.Pool, thread_id: UUID, user_id: UUID, session_id: UUID, text: str) -> None:
    await pool.execute(
        "INSERT INTO thread_messages (thread_id, user_id, session_id, text) VALUES ($1, $2, $3, $4)",
        thread_id, user_id, session_id, text,
    )
