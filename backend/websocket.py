"""The socket endpoints: every check before the upgrade, then one client's socket until it ends.

Refusals are HTTP responses to the upgrade request (contract section 4), never an accepted
socket that is closed: 403 for a foreign origin, 401 without a valid token (or for a
revoked session), 403 for another user's path, 503 when a dependency fails on the way or
the identity store's circuit breaker is open (section 13), and 503 `at_capacity`, before any
other check, when the instance already holds as many sockets as it takes (section 15).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from . import db, fanout
from .auth import authenticate_handshake, origin_allowed, selected_subprotocol
from .chat import ChatConnection
from .connection import Connection
from .mcp import McpConnection
from .registry import SessionRevoked, StandingChanged
from .tokens import Grant

log = logging.getLogger(__name__)

UNAUTHORIZED = {"error": "unauthorized", "message": "authentication required"}
UNAVAILABLE = {"error": "unavailable", "message": "the service is temporarily unavailable; try again"}
FORBIDDEN_ORIGIN = {"error": "forbidden_origin", "message": "this origin may not open a socket"}
FORBIDDEN = {"error": "forbidden", "message": "the socket address names another user"}
AT_CAPACITY = {"error": "at_capacity", "message": "this instance holds as many sockets as it takes; try again shortly"}
# How soon a refused client may try again (Retry-After, seconds).
AT_CAPACITY_RETRY_SECONDS = 1
# A handshake whose user's plan, role or sessions change while it is counted reads them again;
# this many times at most, then it is answered 503 like any other dependency in flux.
STANDING_ATTEMPTS = 3


async def chat_endpoint(websocket: WebSocket) -> None:
    await serve(websocket, ChatConnection)


async def mcp_endpoint(websocket: WebSocket) -> None:
    await serve(websocket, McpConnection)


async def serve(websocket: WebSocket, kind: type[Connection]) -> None:
    """One handshake and, if accepted, its socket, holding one of the instance's slots throughout."""
    capacity = websocket.app.state.capacity
    if not capacity.take():
        await websocket.send_denial_response(JSONResponse(
            AT_CAPACITY, status_code=503, headers={"Retry-After": str(AT_CAPACITY_RETRY_SECONDS)}))
        return
    try:
        await _serve(websocket, kind)
    finally:
        capacity.give_back()


async def _serve(websocket: WebSocket, kind: type[Connection]) -> None:
    state = websocket.app.state
    # First, and with nothing looked up: a page from another site learns nothing more.
    if not origin_allowed(websocket, state.config):
        await websocket.send_denial_response(JSONResponse(FORBIDDEN_ORIGIN, status_code=403))
        return
    grant: Grant | None = None
    connection: Connection | None = None
    # Everything before the upgrade is bounded: a client never waits on a stuck
    # dependency longer than the handshake timeout.
    try:
        async with asyncio.timeout(state.config.handshake_timeout_seconds):
            for _ in range(STANDING_ATTEMPTS):
                grant = await authenticate_handshake(websocket, state.config, state.store)
                if grant is None or not _path_user_matches(websocket, grant):
                    break
                connection = kind(websocket, grant, state)
                try:
                    await connection.open()
                    break
                except StandingChanged:
                    # Counted nothing; what was kept is forgotten, so the next attempt asks the database.
                    await connection.release()
                    connection = None
            else:
                raise StandingChanged("the user's standing kept changing during the handshake")
    except SessionRevoked:
        # Revoked after its database check: refused like any token of a revoked session.
        if connection is not None:
            await connection.release()
        grant = None
    except (TimeoutError, StandingChanged, *db.UNAVAILABLE, *fanout.UNAVAILABLE) as exc:
        log.warning("refusing a socket: a dependency failed during the handshake (%s)", type(exc).__name__)
        if connection is not None:
            await connection.release()
        await websocket.send_denial_response(JSONResponse(UNAVAILABLE, status_code=503))
        return
    if grant is None:
        await websocket.send_denial_response(
            JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        )
        return
    if connection is None:
        await websocket.send_denial_response(JSONResponse(FORBIDDEN, status_code=403))
        return

    writer: asyncio.Task[None] | None = None
    try:
        await websocket.accept(subprotocol=selected_subprotocol(websocket))
        connection.arm_expiry()
        writer = asyncio.create_task(connection.write_loop(), name=f"ws-writer-{connection.id}")
        await connection.read_loop()
    finally:
        await connection.release()
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)


def _path_user_matches(websocket: WebSocket, grant: Grant) -> bool:
    """/ws/{user_id} and /ws/v1/{user_id} belong to the token's user only; /ws has no user."""
    path_user = websocket.path_params.get("user_id")
    if path_user is None:
        return True
    try:
        return uuid.UUID(path_user) == grant.identity.user_id
    except ValueError:
        return False
