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

from backend import agent, auth, connection, db, fanout, history, registry, standing, store
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


# -- RES-03: resuming without loss, with an explicit gap ------------------------------------

@defect("replay-skips-first-missed")
def plant_replay_skips_first_missed() -> None:
    """RES-03: a resuming socket is replayed everything after the first event it missed, not after the last it saw."""
    resume = original(history.History, "resume")

    @functools.wraps(resume)
    async def skipping(self, channel, last_event_id):
        resumption = await resume(self, channel, last_event_id)
        if resumption.outcome == "replay":
            resumption.frames = resumption.frames[1:]
        return resumption

    history.History.resume = skipping


@defect("replay-repeats-last-seen")
def plant_replay_repeats_last_seen() -> None:
    """RES-03: the replay reads the stream from the last id seen inclusive, so that event comes twice at the seam."""
    read_after = original(history, "READ_AFTER")
    history.READ_AFTER = read_after.replace("'(' .. ARGV[1]", "ARGV[1]")


@defect("no-gap-signal")
def plant_no_gap_signal() -> None:
    """RES-03: beyond the retention, whatever is still kept is replayed as if nothing were missing: a silent hole."""
    resume = original(history.History, "resume")

    @functools.wraps(resume)
    async def silent(self, channel, last_event_id):
        resumption = await resume(self, channel, last_event_id)
        if resumption.outcome != "gap":
            return resumption
        entries = await self.redis.xrange(history.stream_key(channel))
        frames = [history.with_seq(fields["frame"], f"{history.tag(channel)}.{entry_id}") for entry_id, fields in entries]
        return history.Resumption("replay", frames, history.position(entries[-1][0]) if entries else resumption.last)

    history.History.resume = silent


@defect("foreign-id-accepted")
def plant_foreign_id_accepted() -> None:
    """RES-03: the id's stream is never checked: another session's id is taken for one of this session's own,
    so it is answered as a gap (or a replay) of this session's stream, never "not found"."""
    resume = original(history.History, "resume")

    @functools.wraps(resume)
    async def trusting(self, channel, last_event_id):
        _, dot, stream_id = last_event_id.partition(".")
        return await resume(self, channel, history.tag(channel) + dot + stream_id)

    history.History.resume = trusting


@defect("foreign-stream-served")
def plant_foreign_stream_served() -> None:
    """RES-03: the stream to replay is found from the id alone, so an id of another session replays that session's events."""
    publish = original(history.History, "publish")
    resume = original(history.History, "resume")
    streams: dict[str, str] = {}  # tag -> channel, of this process's publications (one instance is enough)

    @functools.wraps(publish)
    async def remembering(self, channel, frame):
        streams[history.tag(channel)] = channel
        await publish(self, channel, frame)

    @functools.wraps(resume)
    async def by_id(self, channel, last_event_id):
        return await resume(self, streams.get(last_event_id.partition(".")[0], channel), last_event_id)

    history.History.publish = remembering
    history.History.resume = by_id


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


# -- RES-01, RES-02, RES-05: outages of the database and Redis, and a full instance ------------

import redis.asyncio as redis  # noqa: E402 - only the outage defects need these
from redis.asyncio.client import PubSub  # noqa: E402

from backend import account, capacity, chat  # noqa: E402

@defect("sign-up-user-first")
def plant_sign_up_user_first() -> None:
    """RES-01: sign-up writes the user, then its session, as two statements outside a transaction, so an
    outage between them leaves an account without a session (nobody can sign up with that address again)."""
    original(db, "create_user")

    async def two_steps(pool, *, email, password_hash, display_name, plan, role, device_type, refresh_token_hash):
        try:
            user_id = await pool.fetchval("INSERT INTO users (email, password_hash, display_name, plan, role)"
                                          " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                                          email, password_hash, display_name, plan, role)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "users_email_unique":
                raise db.EmailTaken(email) from None
            raise
        return user_id, await db.create_session(pool, user_id, device_type, refresh_token_hash)

    db.create_user = two_steps


@defect("refresh-outside-transaction")
def plant_refresh_outside_transaction() -> None:
    """RES-01: refresh replaces the refresh token, then records the used-up one, outside a transaction: an
    outage between them leaves the session with a token nobody holds."""
    rotate = original(db, "rotate_refresh_token")

    @functools.wraps(rotate)
    async def unguarded(pool, token_hash, new_hash):
        row = await pool.fetchrow("UPDATE user_sessions SET refresh_token_hash = $2, last_seen_at = now()"
                                  " WHERE refresh_token_hash = $1 AND revoked_at IS NULL RETURNING user_id, id",
                                  token_hash, new_hash)
        if row is None:
            return await rotate(pool, token_hash, new_hash)
        await pool.execute("INSERT INTO spent_refresh_tokens (token_hash, session_id) VALUES ($1, $2)",
                           token_hash, row["id"])
        return row["user_id"], row["id"]

    db.rotate_refresh_token = unguarded


@defect("thread-message-announced-first")
def plant_thread_message_announced_first() -> None:
    """RES-01: a thread message is announced to the thread's audience before it is stored, so an outage
    in between shows people a message the thread never kept."""
    original(chat.ChatConnection, "thread_post")

    async def announcing_first(self, message):
        thread = await self.visible_thread(message)
        text = message.payload["text"]
        audience = chat.session_channel(thread["session_id"]) if thread["scope"] == "session" else self.channels[1]
        await self.state.fanout.publish(audience, chat.frame("thread_message", message.id,
                                                             {"thread_id": str(thread["id"]), "text": text}))
        await db.add_thread_message(self.state.pool, thread["id"], self.identity.user_id, self.identity.session_id,
                                    text)

    chat.ChatConnection.thread_post = announcing_first


@defect("run-left-running")
def plant_run_left_running() -> None:
    """RES-01: a run whose end cannot be recorded (the database is out of reach) is logged and forgotten,
    so it stays recorded "running" for good."""
    original(agent.Agent, "_mark_failed")

    async def log_only(self, run_id, error):
        try:
            await db.finish_execution(self._pool, run_id, "failed", error)
        except Exception as exc:
            log.warning("could not mark agent run %s failed: %s", run_id, exc)

    agent.Agent._mark_failed = log_only


@defect("limit-fails-open-without-redis")
def plant_limit_fails_open_without_redis() -> None:
    """RES-02: while Redis is out of reach a handshake is admitted uncounted and unsubscribed, past the limit."""
    subscribe = original(fanout.Fanout, "subscribe")
    register = original(registry.Registry, "register")
    out_of_reach = (redis.RedisError, *fanout.UNAVAILABLE)

    @functools.wraps(subscribe)
    async def hopeful_subscribe(self, channel, sink):
        try:
            await subscribe(self, channel, sink)
        except out_of_reach:
            log.warning("Redis is out of reach; %s will be subscribed when it is back", channel)

    @functools.wraps(register)
    async def hopeful_register(self, connection_id, identity, limit, evict, revoked):
        try:
            await register(self, connection_id, identity, limit, evict, revoked)
        except out_of_reach:
            log.warning("Redis is out of reach; admitting connection %s uncounted", connection_id)

    fanout.Fanout.subscribe = hopeful_subscribe
    registry.Registry.register = hopeful_register


@defect("no-resubscribe")
def plant_no_resubscribe() -> None:
    """RES-02: the subscription connection is made again after Redis returns, but its channels are not
    subscribed again, so the sockets already open hear nothing more."""
    on_connect = original(PubSub, "on_connect")

    @functools.wraps(on_connect)
    async def forgetting(self, connection):
        self.pending_unsubscribe_channels.clear()  # and nothing subscribed again

    PubSub.on_connect = forgetting


@defect("sign-out-unannounced-without-redis")
def plant_sign_out_unannounced_without_redis() -> None:
    """RES-02: a sign-out while Redis is out of reach revokes the session in the database and answers 204,
    but its announcement is dropped: the session's open sockets are never closed."""
    original(account, "_announce_revocation")

    async def dropped(state, user_id, session_id):
        try:
            await state.registry.revoke_session(user_id, session_id)
        except (redis.RedisError, *fanout.UNAVAILABLE) as exc:
            log.warning("could not announce the revocation of session %s: %s", session_id, exc)

    account._announce_revocation = dropped


@defect("standing-notices-unheard")
def plant_standing_notices_unheard() -> None:
    """RES-02: the instances listen for the database's notices of standing changes but act on none, so a
    sign-out its instance could not announce through Redis leaves the others opening the session's sockets."""
    original(standing.ChangeNotices, "_heard")
    standing.ChangeNotices._heard = lambda self, connection, pid, channel, payload: None


@defect("kept-standing-used-while-deaf")
def plant_kept_standing_used_while_deaf() -> None:
    """AUTH-09: when the connection that hears the database's notices is lost (the database out of reach),
    the instance goes on opening sockets with the standings it kept instead of asking the database."""
    listen = original(standing.StandingCache, "listen")

    def listen_only_when_heard(self, listening, why):
        if listening:
            listen(self, listening, why)

    standing.StandingCache.listen = listen_only_when_heard


@defect("capacity-not-enforced")
def plant_capacity_not_enforced() -> None:
    """RES-05: the instance counts its sockets against its advertised capacity but never refuses one."""
    original(capacity.Capacity, "take")

    def counting(self):
        self.taken += 1
        return True

    capacity.Capacity.take = counting


# -- ISO-08: every operation, and requests replayed by others ----------------------------------

import uuid as _uuid  # noqa: E402 - only the ISO-08 defects need these

from backend import chat as _chat  # noqa: E402
from backend.messages import ProtocolError as _ProtocolError  # noqa: E402


@defect("thread-list-ignores-owner")
def plant_thread_list_ignores_owner() -> None:
    """ISO-08: the thread list's filter lost its parentheses (AND binds before OR), so it returns this
    session's own threads and every user-wide thread of everyone."""
    original(db, "list_threads")

    async def precedence_slipped(pool, user_id, session_id):
        return await pool.fetch(
            "SELECT id, title, scope FROM user_threads WHERE user_id = $1 AND session_id = $2 OR scope = 'user'"
            " ORDER BY created_at, id", user_id, session_id)

    db.list_threads = precedence_slipped


@defect("scoped-write-fanned-out-per-user")
def plant_scoped_write_fanned_out_per_user() -> None:
    """ISO-08: a message written in a thread kept to one device is published to every device of the
    user, as if the thread were user-wide (the audience is picked from a scope read as 'user')."""
    post = original(_chat.ChatConnection, "thread_post")
    visible = original(_chat.ChatConnection, "visible_thread")

    @functools.wraps(post)
    async def fanned_out(self, message):
        async def as_user_wide(message):
            return {**dict(await visible(self, message)), "scope": "user"}

        self.visible_thread = as_user_wide
        try:
            await post(self, message)
        finally:
            del self.visible_thread

    _chat.ChatConnection.thread_post = fanned_out


@defect("refused-write-kept")
def plant_refused_write_kept() -> None:
    """ISO-08: a write to a thread that is not the socket's to see is answered not_found, as it should be,
    but the message was stored in that thread first: the owner finds the stranger's text in it."""
    post = original(_chat.ChatConnection, "thread_post")

    @functools.wraps(post)
    async def stored_anyway(self, message):
        try:
            await post(self, message)
        except _ProtocolError as refusal:
            if refusal.code == "not_found":
                try:
                    thread_id = _uuid.UUID(str(message.payload.get("thread_id")))
                except ValueError:
                    raise refusal from None
                if await self.state.pool.fetchval("SELECT 1 FROM user_threads WHERE id = $1", thread_id):
                    await db.add_thread_message(self.state.pool, thread_id, self.identity.user_id,
                                                self.identity.session_id, str(message.payload.get("text")))
            raise

    _chat.ChatConnection.thread_post = stored_anyway


if __name__ == "__main__":
    sys.exit(main())
