"""The reference backend with one planted defect in the identity lifecycle (contract v3, sections 12 and 13).

    python -m tests.planted.lifecycle_defects --defect NAME [--fd N | --host H --port P] [--log-level L]

The same program as tests/planted/defective_backend.py (its registry, its helpers and its
main), with more defects registered: sign-up, sign-in, refresh, logout, sessions, plans,
roles, usage and the identity store. Every defect of defective_backend.py can be planted
from here too. `--list` prints them all.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from backend import agent, auth, connection, db, fanout, registry, store
from tests.planted.defective_backend import DEFECTS, defect, log, main, original

__all__ = ["DEFECTS", "main"]

T = TypeVar("T")


# -- LIFE: sign-up, sign-in, refresh, sign-out ------------------------------------------------

@defect("email-taken-signs-in")
def plant_email_taken_signs_in() -> None:
    """LIFE-01: a sign-up with a taken address is answered 201 with a new session of the existing account."""
    create_user = original(db, "create_user")

    @functools.wraps(create_user)
    async def forgiving(pool, *, email, device_type, refresh_token_hash, **rest):
        try:
            return await create_user(pool, email=email, device_type=device_type,
                                     refresh_token_hash=refresh_token_hash, **rest)
        except db.EmailTaken:
            user = await db.find_user(pool, email)
            return user["id"], await db.create_session(pool, user["id"], device_type, refresh_token_hash)

    db.create_user = forgiving


@defect("login-records-laptop")
def plant_login_records_laptop() -> None:
    """LIFE-02: every new session is recorded as the default device (laptop_browser), whatever was sent."""
    create_session = original(db, "create_session")

    @functools.wraps(create_session)
    async def as_laptop(db_conn, user_id, device_type, refresh_token_hash):
        return await create_session(db_conn, user_id, "laptop_browser", refresh_token_hash)

    db.create_session = as_laptop


@defect("refresh-not-rotated")
def plant_refresh_not_rotated() -> None:
    """LIFE-03: refresh checks the refresh token but never replaces it, so a used one keeps working."""
    original(db, "rotate_refresh_token")

    async def checking_only(pool, token_hash, new_hash):
        row = await pool.fetchrow("SELECT user_id, id FROM user_sessions"
                                  " WHERE refresh_token_hash = $1 AND revoked_at IS NULL", token_hash)
        return None if row is None else (row["user_id"], row["id"])

    db.rotate_refresh_token = checking_only


@defect("reuse-not-announced")
def plant_reuse_not_announced() -> None:
    """LIFE-03: a reused refresh token is refused like an unknown one: the session's sockets are never closed."""
    rotate = original(db, "rotate_refresh_token")

    @functools.wraps(rotate)
    async def quiet(pool, token_hash, new_hash):
        try:
            return await rotate(pool, token_hash, new_hash)
        except db.SpentRefreshToken:
            return None

    db.rotate_refresh_token = quiet


@defect("revocation-not-announced")
def plant_revocation_not_announced() -> None:
    """LIFE-04: a revocation marks the session for new handshakes but never tells the instances to close its sockets."""
    original(registry.Registry, "revoke_session")

    async def mark_only(self, user_id, session_id):
        await self._redis.set(registry.revoked_key(session_id), 1, ex=self._revocation_seconds)

    registry.Registry.revoke_session = mark_only


@defect("revocation-local-only")
def plant_revocation_local_only() -> None:
    """LIFE-04: a revocation closes the session's sockets on the instance that handled it, not on the others."""
    original(registry.Registry, "revoke_session")

    async def local_only(self, user_id, session_id):
        await self._redis.set(registry.revoked_key(session_id), 1, ex=self._revocation_seconds)
        announcement = registry.json.dumps({"revoke": str(session_id)})
        for entry in list(self._local.values()):
            if entry.user_id == user_id:
                entry.sink(announcement)

    registry.Registry.revoke_session = local_only


# -- ISO: isolation across instances and under load --------------------------------------------

@defect("fanout-local-only")
def plant_fanout_local_only() -> None:
    """ISO-07: an event is handed to this instance's own sockets instead of through Redis, so a user's
    devices on other instances never receive it (and nothing of anyone else's either)."""
    original(fanout.Fanout, "publish")

    async def local_only(self, channel, frame):
        for sink in tuple(self._sinks.get(channel, ())):
            sink(fanout.encode(frame))

    fanout.Fanout.publish = local_only


@defect("agent-answers-latest-session")
def plant_agent_answers_latest_session() -> None:
    """ISO-04: the agent keeps the session of the run started last in one shared variable, so runs in
    flight at the same time answer into each other's sessions (one person at a time sees no fault)."""
    start = original(agent.Agent, "start")
    original(agent, "session_channel")
    latest: dict = {}

    @functools.wraps(start)
    def remembering(self, ask, *rest):
        latest["session"] = ask.identity.session_id
        start(self, ask, *rest)

    agent.Agent.start = remembering
    agent.session_channel = lambda session_id: fanout.session_channel(latest.get("session", session_id))


# -- RES: comings and goings ------------------------------------------------------------------

@defect("abandoned-handshake-kept")
def plant_abandoned_handshake_kept() -> None:
    """RES-04: a socket is let go of only once it was accepted, so one whose client hung up during the
    upgrade stays counted in the registry for good."""
    arm_expiry = original(connection.Connection, "arm_expiry")
    release = original(connection.Connection, "release")

    def arming(self):
        self.accepted = True
        arm_expiry(self)

    async def releasing(self):
        if getattr(self, "accepted", False):
            await release(self)

    connection.Connection.arm_expiry = arming
    connection.Connection.release = releasing


# -- SESS: each device its own conversation ---------------------------------------------------

@defect("agent-events-on-user-channel")
def plant_agent_events_on_user_channel() -> None:
    """SESS-02/03: the agent publishes a run's events on the user's channel, so every device of the user gets them."""
    start = original(agent.Agent, "start")
    original(agent, "session_channel")
    users: dict = {}

    @functools.wraps(start)
    def remembering(self, ask, *rest):
        users[ask.identity.session_id] = ask.identity.user_id
        start(self, ask, *rest)

    agent.Agent.start = remembering
    agent.session_channel = lambda session_id: fanout.user_channel(users[session_id])


@defect("session-thread-seen-by-user")
def plant_session_thread_seen_by_user() -> None:
    """SESS-04: a thread is looked up by user only, so one kept to a session is readable from the user's other sessions."""
    original(db, "visible_thread")

    async def by_user(pool, thread_id, user_id, session_id):
        return await pool.fetchrow("SELECT id, scope, title, session_id FROM user_threads"
                                   " WHERE id = $1 AND user_id = $2", thread_id, user_id)

    db.visible_thread = by_user


# -- LIM-04 and AGENT: plans, roles, usage ----------------------------------------------------

@defect("connection-limit-of-free-plan")
def plant_connection_limit_of_free_plan() -> None:
    """LIM-04: the connection limit is the published default (the free plan's) for every plan."""
    original(connection.Connection, "open")

    async def open_with_default(self):
        limit = self.state.config.plans.default_plan.max_connections_per_user
        await self.state.registry.register(self.id, self.identity, limit, self.replaced, self.revoked)

    connection.Connection.open = open_with_default


@defect("rate-limit-of-free-plan")
def plant_rate_limit_of_free_plan() -> None:
    """LIM-04: the message rate limit is the published default (the free plan's) for every plan."""
    original(connection.Connection, "retry_after")

    async def retry_after(self):
        default = self.state.config.plans.default_plan
        return await self.state.limiter.retry_after(self.identity.user_id, default.messages_per_minute)

    connection.Connection.retry_after = retry_after


@defect("role-not-checked")
def plant_role_not_checked() -> None:
    """AGENT-02: a tool is allowed when the plan lists it; the role's denials are never consulted."""
    original(agent, "refusal")
    agent.refusal = lambda plan, role, tool: "plan" if tool not in plan.tools else None


@defect("usage-not-enforced")
def plant_usage_not_enforced() -> None:
    """AGENT-03: runs are recorded but never counted against the plan's daily allowance."""
    start_execution = original(db, "start_execution")

    @functools.wraps(start_execution)
    async def uncounted(pool, *, runs_per_day, **record):
        return await start_execution(pool, runs_per_day=None, **record)

    db.start_execution = uncounted


@defect("run-recorded-as-default-agent")
def plant_run_recorded_as_default_agent() -> None:
    """AGENT-03: a run is recorded under the default agent (assistant), whichever agent ran it."""
    start_execution = original(db, "start_execution")

    default = original(agent, "DEFAULT_AGENT")

    @functools.wraps(start_execution)
    async def default_agent(pool, **record):
        return await start_execution(pool, **{**record, "agent": default})

    db.start_execution = default_agent


# -- AUTH-08 and AUTH-09: the handshake under a crowd and while the identity store is out ----

@defect("handshakes-share-a-connection")
def plant_handshakes_share_a_connection() -> None:
    """AUTH-08: the identity store keeps one database connection for every handshake, unguarded."""
    original(store.IdentityStore, "_run")

    async def shared(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        if getattr(self, "_shared", None) is None or self._shared.is_closed():
            self._shared = await self.pool.acquire()
        async with asyncio.timeout(self._timeout):
            return await query(self._shared)

    store.IdentityStore._run = shared


@defect("fail-open-when-store-out")
def plant_fail_open_when_store_out() -> None:
    """AUTH-09: while the identity store is out of reach, a handshake trusts the token's signature alone."""
    verify_live_token = original(auth, "verify_live_token")

    @functools.wraps(verify_live_token)
    async def trusting(config, identity_store, token):
        try:
            return await verify_live_token(config, identity_store, token)
        except (store.CircuitOpen, *db.UNAVAILABLE):
            log.warning("identity store unavailable; accepting the token on its signature")
            return auth.verify_access_token(config, token)

    auth.verify_live_token = trusting


@defect("breaker-never-opens")
def plant_breaker_never_opens() -> None:
    """AUTH-09: the circuit breaker counts failures but never opens, so every handshake still tries the database."""
    original(store.Breaker, "failed")

    def counting(self):
        self._failures += 1

    store.Breaker.failed = counting


if __name__ == "__main__":
    sys.exit(main())
