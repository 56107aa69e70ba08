"""The ASGI application: routes, shared resources, the config and health documents."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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

from . import __version__, auth, db, fanout
from .agent import EVENTS, Agent
from .config import Config
from .fanout import Fanout
from .tokens import ALGORITHMS
from .websocket import UNAVAILABLE, websocket_endpoint

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
HEALTH_PROBE_SECONDS = 2.0


class StartupError(RuntimeError):
    """A dependency the backend cannot run without is unreachable or unusable."""


def config_document(config: Config) -> dict[str, Any]:
    """GET /ws/config (contract section 7). Built from settings that are safe to publish."""
    return {
        "version": __version__,
        "mode": config.mode,
        "endpoints": {"websocket": "/ws", "config": "/ws/config", "health": "/health",
                      "register": "/auth/register", "login": "/auth/login"},
        "auth": {"methods": ["bearer_header", "subprotocol_jwt_prefix", "subprotocol_base64url"],
                 "subprotocol_marker": auth.SUBPROTOCOL_MARKER, "algorithms": list(ALGORITHMS),
                 "issuer": config.jwt_issuer, "audience": config.jwt_audience,
                 "access_token_ttl_seconds": config.access_token_ttl_seconds},
        "limits": {"max_connections_per_user": config.max_connections_per_user,
                   "max_message_bytes": config.max_message_bytes,
                   "messages_per_minute": config.messages_per_minute},
        "heartbeat": {"interval_seconds": config.heartbeat_interval_seconds,
                      "timeout_seconds": config.heartbeat_timeout_seconds},
        "timeouts": {"handshake_seconds": config.handshake_timeout_seconds},
        "agent": {"events": list(EVENTS)},
    }


def create_app(config: Config) -> Starlette:
    document = config_document(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                pool = await db.connect(config.database_url)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise StartupError(f"cannot use PostgreSQL at DATABASE_URL: {exc}") from None
            stack.push_async_callback(pool.close)
            events = Fanout(config.redis_url)
            try:
                await events.start()
            except (OSError, redis.RedisError) as exc:
                await events.close()
                raise StartupError(f"cannot use Redis at REDIS_URL: {exc}") from None
            stack.push_async_callback(events.close)
            agent = Agent(pool, events)
            stack.push_async_callback(agent.close)  # runs first: runs still need the pool and Redis
            app.state.config, app.state.pool, app.state.fanout, app.state.agent = config, pool, events, agent
            yield

    async def ws_config(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def health(request: Request) -> JSONResponse:
        state = request.app.state
        database, redis_ok = await asyncio.gather(
            _probe(state.pool.fetchval("SELECT 1")), _probe(state.fanout.redis.ping())
        )
        body = {
            "status": "ok" if database and redis_ok else "unavailable",
            "database": "ok" if database else "unavailable",
            "redis": "ok" if redis_ok else "unavailable",
            "version": __version__,
        }
        return JSONResponse(body, status_code=200 if database and redis_ok else 503)

    routes = [
        Route("/auth/register", auth.register, methods=["POST"]),
        Route("/auth/login", auth.login, methods=["POST"]),
        Route("/ws/config", ws_config, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        WebSocketRoute("/ws", websocket_endpoint),
    ]
    handlers = {HTTPException: _http_error, Exception: _internal_error}
    handlers.update(dict.fromkeys(db.UNAVAILABLE + fanout.UNAVAILABLE, _unavailable))
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers, max_body_size=MAX_BODY_BYTES)


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
