"""The ASGI application: routes, shared resources, the config, security and health documents."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable
from http import HTTPStatus
from typing import Any

import asyncpg
import redis.asyncio as redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from . import __version__, account, auth, db, fanout
from .agent import AGENTS, EVENTS, Agent
from .capacity import Capacity
from .config import Config
from .fanout import Fanout
from .history import Retention
from .ratelimit import RateLimiter
from .registry import CONTROL_PREFIX, Registry
from .standing import ChangeNotices, StandingCache
from .store import CLOSED, Breaker, IdentityStore, call_timeout
from .tokens import ALGORITHMS, Identity, issue_access_token, verify_access_token
from .tools import TOOLS
from .websocket import UNAVAILABLE, chat_endpoint, mcp_endpoint

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
HEALTH_PROBE_SECONDS = 2.0


class StartupError(RuntimeError):
    """A dependency the backend cannot run without is unreachable or unusable."""


def auth_methods(config: Config) -> list[str]:
    methods = ["bearer_header", "subprotocol_jwt_prefix", "subprotocol_base64url"]
    return methods + ["development_login"] if config.mode == "development" else methods


def config_document(config: Config) -> dict[str, Any]:
    """GET /ws/config (contract section 7). Built from settings that are safe to publish."""
    catalogue = config.plans
    free = catalogue.default_plan
    return {
        "version": __version__,
        "mode": config.mode,
        "endpoints": {"websocket": "/ws", "user": "/ws/{user_id}", "versioned": "/ws/v1/{user_id}",
                      "mcp": "/ws/mcp", "config": "/ws/config", "health": "/health",
                      "secure_config": "/ws/secure/config", "secure_health": "/ws/secure/health",
                      "register": "/auth/register", "login": "/auth/login"},
        "auth": {"methods": auth_methods(config),
                 "subprotocol_marker": auth.SUBPROTOCOL_MARKER, "algorithms": list(ALGORITHMS),
                 "issuer": config.jwt_issuer, "audience": config.jwt_audience,
                 "access_token_ttl_seconds": config.access_token_ttl_seconds,
                 "password_hash": {"scheme": "scrypt", "cost": config.password_hash_cost}},
        # The default plan's; each plan's own are under "plans".
        "limits": {"max_connections_per_user": free.max_connections_per_user,
                   "max_message_bytes": config.max_message_bytes,
                   "messages_per_minute": free.messages_per_minute,
                   "max_sockets_per_instance": config.max_sockets_per_instance},
        "heartbeat": {"interval_seconds": config.heartbeat_interval_seconds,
                      "timeout_seconds": config.heartbeat_timeout_seconds},
        "timeouts": {"handshake_seconds": config.handshake_timeout_seconds,
                     "identity_store_cooldown_seconds": config.identity_store_cooldown_seconds},
        "agent": {"events": list(EVENTS), "names": list(AGENTS)},
        "resume": retention(config).document(),
        "tools": list(TOOLS),
        "plans": {name: plan.document() for name, plan in catalogue.plans.items()},
        "roles": {name: role.document() for name, role in catalogue.roles.items()},
    }


def retention(config: Config) -> Retention:
    """What a resuming client can get back (contract section 6a)."""
    return Retention(config.resume_retained_events, config.resume_retained_seconds)


def security_document(config: Config) -> dict[str, Any]:
    """GET /ws/secure/config (contract section 10): how sockets are authenticated; no secret."""
    return {
        "mode": config.mode, "auth_methods": auth_methods(config), "algorithms": list(ALGORITHMS),
        "issuer": config.jwt_issuer, "audience": config.jwt_audience,
        "allowed_origins": list(config.allowed_origins), "origin_required": config.origin_required,
    }


def create_app(config: Config) -> Starlette:
    document, security = config_document(config), security_document(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                pool = await db.connect(config.database_url)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise StartupError(f"cannot use PostgreSQL at DATABASE_URL: {exc}") from None
            stack.push_async_callback(db.close, pool)
            events = Fanout(config.redis_url, retention(config), everywhere=(CONTROL_PREFIX,))
            try:
                await events.start()
            except (OSError, redis.RedisError) as exc:
                await events.close()
                raise StartupError(f"cannot use Redis at REDIS_URL: {exc}") from None
            stack.push_async_callback(events.close)
            kept = StandingCache(events.redis)
            events.on_failure.append(lambda: kept.forget_all("the Redis subscription failed"))
            breaker = Breaker(config.identity_store_cooldown_seconds)
            notices = ChangeNotices(config.database_url, kept, may_try=lambda: breaker.state == CLOSED)
            notices.start()
            stack.push_async_callback(notices.close)
            registry = Registry(events, revocation_seconds=config.access_token_ttl_seconds, standing=kept)
            registry.start()
            stack.push_async_callback(registry.close)
            agent = Agent(pool, events)
            stack.push_async_callback(agent.close)  # runs first: runs still need the pool and Redis
            app.state.config, app.state.pool, app.state.fanout, app.state.agent = config, pool, events, agent
            app.state.registry, app.state.limiter = registry, RateLimiter(events.redis)
            app.state.capacity = Capacity(config.max_sockets_per_instance)
            app.state.store = IdentityStore(pool, breaker,
                                            call_timeout(config.handshake_timeout_seconds), kept)
            yield

    async def ws_config(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def health(request: Request) -> JSONResponse:
        parts = await _dependencies(request.app.state)
        if config.mode != "development":
            # Liveness for anyone; which part failed is the operator's to know (/ws/secure/health).
            return _health_response(parts, {}, detailed=False)
        return _health_response(parts, {"version": __version__})

    async def secure_config(request: Request) -> JSONResponse:
        return JSONResponse(security)

    async def secure_health(request: Request) -> JSONResponse:
        state = request.app.state
        # Connection counts, memory and the breaker's state are for operators in production.
        if config.mode != "development" and auth.operator_standing(request, config) != auth.OPERATOR:
            return auth.operator_unauthorized()
        parts = {**await _dependencies(state), "token_verification": _tokens_round_trip(config)}
        extra = {"connections": {"open": state.registry.open}, "memory_rss_bytes": _rss_bytes(),
                 "identity_store": {"state": state.store.breaker.state}}
        return _health_response(parts, extra)

    routes = [
        Route("/auth/register", auth.register, methods=["POST"]),
        Route("/auth/login", auth.login, methods=["POST"]),
        Route("/auth/refresh", account.refresh, methods=["POST"]),
        Route("/auth/logout", account.logout, methods=["POST"]),
        Route("/account/plan", account.change_plan, methods=["POST"]),
        Route("/operator/entitlements", account.change_entitlements, methods=["POST"]),
        Route("/ws/config", ws_config, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ws/secure/config", secure_config, methods=["GET"]),
        Route("/ws/secure/health", secure_health, methods=["GET"]),
        WebSocketRoute("/ws", chat_endpoint),
        WebSocketRoute("/ws/mcp", mcp_endpoint),  # before /ws/{user_id}, which would take "mcp" for a user
        WebSocketRoute("/ws/v1/{user_id}", chat_endpoint),
        WebSocketRoute("/ws/{user_id}", chat_endpoint),
    ]
    handlers = {HTTPException: _http_error, Exception: _internal_error}
    handlers.update(dict.fromkeys(db.UNAVAILABLE + fanout.UNAVAILABLE, _unavailable))
    return Service(routes=routes, lifespan=lifespan, exception_handlers=handlers, max_body_size=MAX_BODY_BYTES)


class Service(Starlette):
    """The application, whose sockets go straight to their routes.

    The middleware around the routes is for HTTP: error responses, the body limit and the
    exception handlers above, which all build HTTP responses. A socket's endpoint answers
    every refusal and failure itself (websocket.py), so a handshake skips those layers,
    which every one of its messages would otherwise pass through.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await self.router(scope, receive, send)


async def _dependencies(state: Any) -> dict[str, bool]:
    database, redis_ok = await asyncio.gather(
        _probe(state.pool.fetchval("SELECT 1")), _probe(state.fanout.redis.ping())
    )
    return {"database": database, "redis": redis_ok}


def _health_response(parts: dict[str, bool], extra: dict[str, Any], detailed: bool = True) -> JSONResponse:
    """`status` and each part "ok" or "unavailable" (unless not `detailed`); 503 when any part is unavailable."""
    healthy = all(parts.values())
    body = {"status": "ok" if healthy else "unavailable"}
    if detailed:
        body.update({name: "ok" if ok else "unavailable" for name, ok in parts.items()})
    body.update(extra)
    return JSONResponse(body, status_code=200 if healthy else 503)


def _tokens_round_trip(config: Config) -> bool:
    """Sign a throwaway token and verify it: the secret and the JWT library both work."""
    identity = Identity(uuid.uuid4(), uuid.uuid4())
    try:
        grant = verify_access_token(config, issue_access_token(config, identity))
    except Exception:
        return False
    return grant is not None and grant.identity == identity


def _rss_bytes() -> int:
    """Resident memory now (not the peak, which never goes down): /proc/self/statm, in pages."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


async def _probe(check: Awaitable[Any]) -> bool:
    try:
        async with asyncio.timeout(HEALTH_PROBE_SECONDS):
            await check
        return True
    except Exception:
        return False


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    return JSONResponse({"error": code, "message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    # A dependency being down is the service's state, not a bug: no traceback.
    log.warning("%s %s: a dependency is unavailable (%s)", request.method, request.url.path, type(exc).__name__)
    return JSONResponse(UNAVAILABLE, status_code=503)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # The exception itself is logged by the server; the client learns nothing of it.
    return JSONResponse({"error": "internal_error", "message": "internal server error"}, status_code=500)
