"""A session's life after sign-in, and the account's plan (contract section 12).

POST /auth/refresh rotates a session's refresh token; presenting a used-up one again means
it was stolen, and revokes the session. POST /auth/logout revokes the caller's session.
A revocation is announced through Redis, so every instance closes the session's sockets
with 4009. POST /account/plan changes the plan for the user's next connections, in
development only; POST /operator/entitlements is how an operator changes a plan or a role,
in either mode (contract section 14).
"""

from __future__ import annotations

import hashlib
import logging
import uuid

import redis.asyncio as redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import db, fanout
from .auth import (
    OPERATOR, InvalidRequest, bearer_token, choice, error, json_object, operator_required, operator_standing,
    operator_unauthorized, token_document,
)
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
        await _announce_revocation(state, spent.user_id, spent.session_id)
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
    # The database is the truth (reauthentication asks it, and handshakes whenever the
    # standing version moved on); the announcement closes the session's open sockets on
    # every instance and moves that version on.
    await _announce_revocation(state, user_id, session_id)
    return Response(status_code=204)


async def _announce_revocation(state, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Have every instance close the session's sockets; while Redis is out of reach, this
    instance closes its own at once and the others hear of it when Redis is back (section 16)."""
    try:
        await state.registry.revoke_session(user_id, session_id)
    except (*fanout.UNAVAILABLE, redis.RedisError) as exc:
        log.warning("could not announce the revocation of session %s yet (%s); closing its sockets here and "
                    "announcing it once Redis answers", session_id, type(exc).__name__)
        state.registry.revoke_later(user_id, session_id)


async def change_plan(request: Request) -> JSONResponse:
    """Move the user to another plan; open sockets keep the plan they opened with."""
    grant = _bearer_grant(request)
    state = request.app.state
    if grant is None or await db.live_session(state.pool, grant.identity.user_id, grant.identity.session_id) is None:
        return _unauthorized()
    if state.config.mode != "development":
        return operator_required("a plan change")
    try:
        plan = choice(await json_object(request), "plan", tuple(state.config.plans.plans))
    except InvalidRequest as exc:
        return error(422, "invalid_request", str(exc))
    await db.set_plan(state.pool, grant.identity.user_id, plan)
    await state.registry.standing_changed(grant.identity.user_id)
    return JSONResponse({"plan": plan})


def _bearer_grant(request: Request) -> Grant | None:
    token = bearer_token(request)
    return None if token is None else verify_access_token(request.app.state.config, token)


async def change_entitlements(request: Request) -> JSONResponse:
    """POST /operator/entitlements: an operator sets a user's plan and/or role, in either mode.

    Like a self-service change, it applies to the user's next connections.
    """
    state = request.app.state
    if operator_standing(request, state.config) != OPERATOR:
        return operator_unauthorized()
    catalogue = state.config.plans
    try:
        body = await json_object(request)
        try:
            user_id = uuid.UUID(body["user_id"]) if isinstance(body.get("user_id"), str) else None
        except ValueError:
            user_id = None
        if user_id is None:
            raise InvalidRequest("user_id is missing or malformed; expected the user's id (a UUID)")
        plan = choice(body, "plan", tuple(catalogue.plans)) if body.get("plan") is not None else None
        role = choice(body, "role", tuple(catalogue.roles)) if body.get("role") is not None else None
        if plan is None and role is None:
            raise InvalidRequest("nothing to change; expected plan, role or both")
    except InvalidRequest as exc:
        return error(422, "invalid_request", str(exc))
    changed = await db.set_entitlements(state.pool, user_id, plan, role)
    if changed is None:
        return error(404, "not_found", "no such user")
    await state.registry.standing_changed(user_id)
    log.info("operator set user %s to plan %s, role %s", user_id, changed["plan"], changed["role"])
    return JSONResponse({"user_id": str(user_id), "plan": changed["plan"], "role": changed["role"]})
