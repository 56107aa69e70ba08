"""PostgreSQL: the connection pool, migrations, and every query the backend runs."""

from __future__ import annotations

import asyncio
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
# With a second 32-bit key per user (two-key advisory locks never meet the one-key kind).
USAGE_LOCK_CLASS = 0x75736167  # "usag"
# A database that hangs must not hold a request for long: bounds on connecting and on each
# query (a handshake's calls have their own, see store.call_timeout).
CONNECT_TIMEOUT_SECONDS = 2
COMMAND_TIMEOUT_SECONDS = 2
CLOSE_TIMEOUT_SECONDS = 2
# The runs of the current UTC day; `now()` is the transaction's start, also the new row's started_at.
RUNS_TODAY = """
SELECT count(*) FROM agent_executions
 WHERE user_id = $1 AND status <> 'refused'
   AND started_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
"""


# A pool or one of its connections: both run queries the same way.
Executor = asyncpg.Pool | asyncpg.Connection


class EmailTaken(Exception):
    """A user with this email (compared case-insensitively) already exists."""


class SpentRefreshToken(Exception):
    """A refresh token used up by an earlier refresh was presented again; its session is now revoked."""

    def __init__(self, user_id: UUID, session_id: UUID):
        super().__init__("a used-up refresh token was presented again")
        self.user_id, self.session_id = user_id, session_id


async def connect(database_url: str) -> asyncpg.Pool:
    """Apply pending migrations, then open the pool the request handlers share.

    A connection the database or the network broke is noticed by the pool and replaced on
    its next use, so the pool recovers by itself when the database comes back. There is
    no floor of connections (min_size 0): asyncpg would restore one in the background,
    trying the database while the identity store's breaker says to leave it alone.
    """
    await migrate(database_url)
    return await asyncpg.create_pool(database_url, min_size=0, max_size=10, timeout=CONNECT_TIMEOUT_SECONDS,
                                     command_timeout=COMMAND_TIMEOUT_SECONDS, reset=_keep_session)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool: nothing more than asyncpg's own
    rollback of a transaction left open. No query here sets session state (a setting, a LISTEN,
    a session-level lock), so the default reset (RESET ALL, UNLISTEN *, ...) would be one more
    round trip per query, for nothing.
    """


async def close(pool: asyncpg.Pool) -> None:
    """Close the pool's connections politely, or drop them if the database does not answer."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
            await pool.close()
    except TimeoutError:
        log.warning("PostgreSQL did not answer while closing the pool; dropped its connections")
        pool.terminate()


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
    pool: asyncpg.Pool, *, email: str, password_hash: str, display_name: str, plan: str, role: str,
    device_type: str, refresh_token_hash: str,
) -> tuple[UUID, UUID]:
    """Create a user and its first session in one statement; return (user_id, session_id)."""
    try:
        row = await pool.fetchrow(
            """
            WITH new_user AS (
                INSERT INTO users (email, password_hash, display_name, plan, role)
                VALUES ($1, $2, $3, $4, $5) RETURNING id
            )
            INSERT INTO user_sessions (user_id, device_type, refresh_token_hash)
            SELECT id, $6, $7 FROM new_user
            RETURNING user_id, id
            """,
            email, password_hash, display_name, plan, role, device_type, refresh_token_hash,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "users_email_unique":
            raise EmailTaken(email) from None
        raise
    return row["user_id"], row["id"]


async def find_user(db: Executor, email: str) -> asyncpg.Record | None:
    """The user's id, password hash, plan and role, or None."""
    return await db.fetchrow("SELECT id, password_hash, plan, role FROM users WHERE lower(email) = lower($1)", email)


async def create_session(db: Executor, user_id: UUID, device_type: str, refresh_token_hash: str) -> UUID:
    return await db.fetchval(
        "INSERT INTO user_sessions (user_id, device_type, refresh_token_hash) VALUES ($1, $2, $3) RETURNING id",
        user_id, device_type, refresh_token_hash,
    )


async def live_session(db: Executor, user_id: UUID, session_id: UUID) -> asyncpg.Record | None:
    """The user's plan and role if the session exists, is theirs and is not revoked.

    Only read: a handshake writes nothing (`last_seen_at` is a refresh's, see rotate_refresh_token).
    """
    return await db.fetchrow(
        "SELECT users.plan, users.role FROM user_sessions JOIN users ON users.id = user_sessions.user_id"
        " WHERE user_sessions.id = $1 AND user_sessions.user_id = $2 AND user_sessions.revoked_at IS NULL",
        session_id, user_id,
    )


async def revoke_session(pool: asyncpg.Pool, user_id: UUID, session_id: UUID) -> bool:
    """Revoke the user's session (again, if it already is); False if they have no such session."""
    found = await pool.fetchval(
        "UPDATE user_sessions SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND user_id = $2 RETURNING id",
        session_id, user_id,
    )
    return found is not None


async def rotate_refresh_token(pool: asyncpg.Pool, token_hash: str, new_hash: str) -> tuple[UUID, UUID] | None:
    """Replace a live session's current refresh token; return (user_id, session_id), or None.

    The replaced token is kept as spent. Presenting a spent token revokes its session and
    raises SpentRefreshToken. Two refreshes racing with one token end the same way: the
    second waits for the first's row lock, then finds the token spent.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE user_sessions SET refresh_token_hash = $2, last_seen_at = now()"
            " WHERE refresh_token_hash = $1 AND revoked_at IS NULL RETURNING user_id, id",
            token_hash, new_hash,
        )
        if row is not None:
            await conn.execute("INSERT INTO spent_refresh_tokens (token_hash, session_id) VALUES ($1, $2)",
                               token_hash, row["id"])
            return row["user_id"], row["id"]
        spent = await conn.fetchrow(
            "UPDATE user_sessions SET revoked_at = coalesce(revoked_at, now()) FROM spent_refresh_tokens"
            " WHERE spent_refresh_tokens.token_hash = $1 AND user_sessions.id = spent_refresh_tokens.session_id"
            " RETURNING user_sessions.user_id, user_sessions.id",
            token_hash,
        )
    if spent is not None:
        raise SpentRefreshToken(spent["user_id"], spent["id"])
    return None


async def set_plan(pool: asyncpg.Pool, user_id: UUID, plan: str) -> None:
    await pool.execute("UPDATE users SET plan = $2 WHERE id = $1", user_id, plan)


async def set_entitlements(pool: asyncpg.Pool, user_id: UUID, plan: str | None, role: str | None) -> asyncpg.Record | None:
    """Set the plan and/or the role (None keeps it); the user's plan and role after, or None if no such user."""
    return await pool.fetchrow(
        "UPDATE users SET plan = COALESCE($2, plan), role = COALESCE($3, role) WHERE id = $1 RETURNING plan, role",
        user_id, plan, role,
    )


async def start_execution(
    pool: asyncpg.Pool, *, user_id: UUID, session_id: UUID, request_id: str, agent: str, tool: str,
    runs_per_day: int | None,
) -> tuple[UUID, bool]:
    """Record an agent run: (run_id, True) when running, (run_id, False) when refused as over the allowance.

    The run_id is the one clients see. The user's runs today (UTC, every status but
    refused) are counted and the new one recorded under a per-user lock, so chats racing
    on any instance never run more than `runs_per_day` (None: unlimited).
    """
    async with pool.acquire() as conn, conn.transaction():
        allowed = True
        if runs_per_day is not None:
            # Held to the end of the transaction, so the next count sees this row.
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", USAGE_LOCK_CLASS, str(user_id))
            allowed = await conn.fetchval(RUNS_TODAY, user_id) < runs_per_day
        run_id = await conn.fetchval(
            "INSERT INTO agent_executions (user_id, session_id, request_id, agent, tool, status, error, completed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $6 = 'refused' THEN now() END) RETURNING id",
            user_id, session_id, request_id, agent, tool, "running" if allowed else "refused",
            None if allowed else "usage_limit_reached",
        )
    return run_id, allowed


async def record_refusal(
    pool: asyncpg.Pool, *, user_id: UUID, session_id: UUID, request_id: str, agent: str, tool: str, error: str,
) -> UUID:
    """Record a run that was refused before it started (it does not count against the allowance)."""
    return await pool.fetchval(
        "INSERT INTO agent_executions (user_id, session_id, request_id, agent, tool, status, error, completed_at)"
        " VALUES ($1, $2, $3, $4, $5, 'refused', $6, now()) RETURNING id",
        user_id, session_id, request_id, agent, tool, error,
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


async def list_threads(pool: asyncpg.Pool, user_id: UUID, session_id: UUID) -> list[asyncpg.Record]:
    """The user's threads this session may see: the user-wide ones and its own, oldest first."""
    return await pool.fetch(
        "SELECT id, title, scope FROM user_threads WHERE user_id = $1 AND (scope = 'user' OR session_id = $2)"
        " ORDER BY created_at, id",
        user_id, session_id,
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
