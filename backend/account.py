"""A session's life after sign-in, and the account's plan (contract section 12).

POST /auth/refresh rotates a session's refresh token; presenting a used-up one again means
it was stolen, and revokes the session. POST /auth/logout revokes the caller's session.
A revocation is announced through Redis, so every instance closes the session's sockets
with 4009. POST /account/plan changes the plan for the user's next connections.
"""

from __future__ import annotations

import hashlib
import logging

import redis.asyncio as redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import db, fanout
from .auth import InvalidRequest, bearer_token, choice, error, json_object, token_document
from .tokens import Grant, Identity, new_refresh_token, verify_access_token

log = logging.getLogger(__name__)

MAX_REFRESH_TOKEN_CHARS = 256


def _unauthorized() -> JSONResponse:
    return error(401, "unauthorized", "authentication required", {"WWW-Authenticate": "Bearer"})


def _invalid_refresh_token() -> JSONResponse:
    return error(401, "invalid_refresh_token", "the refresh token is not valid; sign in again")


async def refresh(request: Request) -> JSONResponse:
    try:
        body = await json_object(request)
    except InvalidRequest as exc:
        return error(422, "invalid_request", str(exc))
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token or len(token) > MAX_REFRESH_TOKEN_CHARS:
        return error(422, "invalid_request", "refresh_token is missing or malformed; expected the token sign-in returned")
    state = request.app.state
    new_token, new_hash = new_refresh_token()
    try:
        rotated = await db.rotate_refresh_token(state.pool, hashlib.sha256(token.encode()).hexdigest(), new_hash)
    except db.SpentRefreshToken as spent:
        log.warning("a used-up refresh token was presented again; revoked session %s", spent.session_id)
        try:
            await state.registry.revoke_session(spent.user_id, spent.session_id)
        except (*fanout.UNAVAILABLE, redis.RedisError) as exc:
            # Revoked all the same: its sockets fall at their next handshake or reauthentication.
            log.warning("could not announce the revocation of session %s: %s", spent.session_id, exc)
        return _invalid_refresh_token()
    if rotated is None:
        return _invalid_refresh_token()
    return token_document(state.config, Identity(*rotated), new_token, status=200)


async def logout(request: Request) -> Response:
    """Revoke the session of the bearer token. Saying it twice does no harm and announces it again."""
    grant = _bearer_grant(request)
    if grant is None:
        return _unauthorized()
    state = request.app.state
    user_id, session_id = grant.identity.user_id, grant.identity.session_id
    if not await db.revoke_session(state.pool, user_id, session_id):
        return _unauthorized()
    # The database is the truth (handshakes and reauthentication ask it); this closes the
    # session's open sockets. If Redis fails the client gets a 503 and may say it again.
    await state.registry.revoke_session(user_id, session_id)
    return Response(status_code=204)


async def change_plan(request: Request) -> JSONResponse:
    """Move the user to another plan; open sockets keep the plan they opened with."""
    grant = _bearer_grant(request)
    state = request.app.state
    if grant is None or await db.touch_session(state.pool, grant.identity.user_id, grant.identity.session_id) is None:
        return _unauthorized()
    try:
        plan = choice(await json_object(request), "plan", tuple(state.config.plans.plans))
    except InvalidRequest as exc:
        return error(422, "invalid_request", str(exc))
    await db.set_plan(state.pool, grant.identity.user_id, plan)
    return JSONResponse({"plan": plan})


def _bearer_grant(request: Request) -> Grant | None:
    token = bearer_token(request)
    return None if token is None else verify_access_token(request.app.state.config, token)
