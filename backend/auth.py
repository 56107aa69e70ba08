"""Authentication: password hashing, POST /auth/register and /auth/login, socket handshakes.

A socket handshake asks the database through the identity store (store.py), whose circuit
breaker refuses at once while the database is out of reach, unless the store kept the
session's standing from an earlier handshake and no change has touched it since.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from . import db
from .config import Config
from .plans import DEFAULT_PLAN, DEFAULT_ROLE
from .standing import Standing
from .store import IdentityStore
from .tokens import Grant, Identity, issue_access_token, new_refresh_token, verify_access_token

DEVICE_TYPES = ("laptop_browser", "mobile_browser", "desktop_app", "tablet_browser")
SUBPROTOCOL_MARKER = "jwt-auth"
SUBPROTOCOL_PREFIX = "jwt."
DEV_USER_HEADER = "x-dev-user"
DEV_DEVICE_TYPE = "laptop_browser"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
COMPACT_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
MAX_PASSWORD_CHARS = 1024
MAX_DISPLAY_NAME_CHARS = 100

# scrypt at N=2**14, r=8: 16 MiB and a few tens of milliseconds per hash, run off the event loop.
# The cost is the deployment's (PASSWORD_HASH_COST, published in /ws/config); production never
# runs below the default (backend/__main__.py refuses to start).
SCRYPT_COST, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 14, 8, 1, 32


def hash_password(password: str, cost: int = SCRYPT_COST) -> str:
    """'scrypt$N$r$p$salt$hash' with N = 2**cost and a fresh random salt, both base64."""
    salt = secrets.token_bytes(16)
    n = 2**cost
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LEN)
    return "$".join(["scrypt", str(n), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, binascii.Error):
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


@functools.cache
def _unknown_user_hash(cost: int) -> str:
    # Checked against when the email is unknown, so both refusals take the same time.
    return hash_password(secrets.token_urlsafe(16), cost)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# HTTP endpoints ------------------------------------------------------------------------

class InvalidRequest(Exception):
    """The request body is unusable; the message names the field and what was expected."""


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


async def register(request: Request) -> JSONResponse:
    state = request.app.state
    plans = state.config.plans
    try:
        body = await json_object(request)
        email = _email(body)
        password = _password(body)
        display_name = _display_name(body, default=email.split("@", 1)[0])
        plan = choice(body, "plan", tuple(plans.plans), default=DEFAULT_PLAN)
        role = choice(body, "role", tuple(plans.roles), default=DEFAULT_ROLE)
        device_type = choice(body, "device_type", DEVICE_TYPES, default="laptop_browser")
    except InvalidRequest as exc:
        return error(422, "invalid_request", str(exc))
    # Entitlements are an operator's to give in production; signing up grants only the defaults.
    operator = operator_standing(request, state.config)
    if operator == WRONG_OPERATOR:
        return operator_unauthorized()
    if (plan, role) != (DEFAULT_PLAN, DEFAULT_ROLE) and state.config.mode != "development" and operator != OPERATOR:
        return operator_required("a plan or role at sign-up")
    password_hash = await asyncio.to_thread(hash_password, password, state.config.password_hash_cost)
    refresh_token, refresh_hash = new_refresh_token()
    try:
        user_id, session_id = await db.create_user(
            state.pool, email=email, password_hash=password_hash, display_name=display_name,
            plan=plan, role=role, device_type=device_type, refresh_token_hash=refresh_hash,
        )
    except db.EmailTaken:
        return error(409, "email_taken", "an account with this email already exists")
    return token_document(state.config, Identity(user_id, session_id), refresh_token, status=201)


async def login(request: Request) -> JSONResponse:
    try:
        body = await json_object(request)
        email = _email(body)
        password = _password(body)
        device_type = choice(body, "device_type", DEVICE_TYPES)
    except InvalidRequest as exc:
        return error(422, "invalid_request", str(exc))
    state = request.app.state
    user = await db.find_user(state.pool, email)
    stored = user["password_hash"] if user else _unknown_user_hash(state.config.password_hash_cost)
    password_ok = await asyncio.to_thread(verify_password, password, stored)
    if user is None or not password_ok:
        return error(401, "invalid_credentials", "the email or password is incorrect")
    refresh_token, refresh_hash = new_refresh_token()
    session_id = await db.create_session(state.pool, user["id"], device_type, refresh_hash)
    return token_document(state.config, Identity(user["id"], session_id), refresh_token, status=200)


def token_document(config: Config, identity: Identity, refresh_token: str, status: int) -> JSONResponse:
    document = {
        "user_id": str(identity.user_id),
        "session_id": str(identity.session_id),
        "access_token": issue_access_token(config, identity),
        "refresh_token": refresh_token,
        "token_type": "bearer",
        "expires_in": config.access_token_ttl_seconds,
    }
    return JSONResponse(document, status_code=status, headers={"Cache-Control": "no-store"})


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON; expected a JSON object") from None
    except RecursionError:
        raise InvalidRequest("the body is nested too deeply; expected a flat JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body is not a JSON object; expected an object with the fields email and password")
    for name, value in body.items():
        # Neither can be hashed, stored or answered: PostgreSQL text holds no NUL, UTF-8 no lone surrogate.
        if isinstance(value, str) and ("\x00" in value or not _encodable(value)):
            raise InvalidRequest(f"{name[:40]} holds a NUL character or a lone surrogate; expected plain text")
    return body


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# The operator credential (contract section 14) -------------------------------------------

OPERATOR, NO_OPERATOR, WRONG_OPERATOR = "operator", "none", "wrong"


def operator_standing(request: Request, config: Config) -> str:
    """OPERATOR when the request carries the operator credential, NO_OPERATOR when it carries
    no Authorization at all, WRONG_OPERATOR for any other credential (or an instance that has none)."""
    if "authorization" not in request.headers:
        return NO_OPERATOR
    presented = bearer_token(request)
    expected = config.operator_token
    if presented is None or expected is None:
        return WRONG_OPERATOR
    return OPERATOR if hmac.compare_digest(presented.encode(), expected.encode()) else WRONG_OPERATOR


def operator_unauthorized() -> JSONResponse:
    return error(401, "unauthorized", "the operator credential is not valid", {"WWW-Authenticate": "Bearer"})


def operator_required(what: str) -> JSONResponse:
    return error(403, "operator_required", f"{what} needs the operator credential in production: "
                 "an operator sets plans and roles with POST /operator/entitlements")


def _email(body: dict[str, Any]) -> str:
    value = body.get("email")
    if not isinstance(value, str) or len(value) > 254 or not EMAIL.fullmatch(value.strip()):
        raise InvalidRequest("email is missing or malformed; expected an address like name@example.com")
    return value.strip()


def _password(body: dict[str, Any]) -> str:
    value = body.get("password")
    if not isinstance(value, str) or not value:
        raise InvalidRequest("password is missing or empty; expected a non-empty string")
    if len(value) > MAX_PASSWORD_CHARS:
        raise InvalidRequest(f"password is too long; expected at most {MAX_PASSWORD_CHARS} characters")
    return value


def _display_name(body: dict[str, Any], default: str) -> str:
    value = body.get("display_name")
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidRequest(f"display_name is malformed; expected 1 to {MAX_DISPLAY_NAME_CHARS} characters")
    return value.strip()


def choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    value = body.get(name)
    if value is None and default is not None:
        return default
    if value not in allowed:
        got = "missing" if value is None else f"{value!r}"
        raise InvalidRequest(f"{name} is {got}; expected one of {', '.join(allowed)}")
    return value


# Socket handshakes ---------------------------------------------------------------------

def handshake_token(conn: HTTPConnection) -> str | None:
    """The access token a handshake carries (contract section 4), or None.

    None also when it carries more than one credential (see handshake_credentials). The
    query string is never read.
    """
    credentials = handshake_credentials(conn)
    return credentials[0] if len(credentials) == 1 else None


def handshake_credentials(conn: HTTPConnection) -> list[str | None]:
    """Every credential a handshake offers: the token of each `Authorization` header (None
    for one that is not `Bearer <token>`), each `jwt.<token>` subprotocol, and each base64url
    token offered next to the `jwt-auth` marker.

    More than one is ambiguous, even twice the same token: whichever the server picked, a
    proxy, a log or another server might pick the other. Such a handshake is refused.
    """
    credentials: list[str | None] = []
    for header in conn.headers.getlist("authorization"):
        scheme, _, value = header.partition(" ")
        credentials.append(value.strip() if scheme.lower() == "bearer" and value.strip() else None)
    offered = offered_subprotocols(conn)
    for protocol in offered:
        if protocol.startswith(SUBPROTOCOL_PREFIX) and len(protocol) > len(SUBPROTOCOL_PREFIX):
            credentials.append(protocol[len(SUBPROTOCOL_PREFIX):])
    if SUBPROTOCOL_MARKER in offered:
        for protocol in offered:
            if protocol != SUBPROTOCOL_MARKER and BASE64URL.fullmatch(protocol):
                try:
                    decoded = base64.urlsafe_b64decode(protocol + "=" * (-len(protocol) % 4)).decode("ascii")
                except (binascii.Error, UnicodeDecodeError):
                    continue
                if COMPACT_JWT.fullmatch(decoded):
                    credentials.append(decoded)
    return credentials


def offered_subprotocols(conn: HTTPConnection) -> list[str]:
    return list(conn.scope.get("subprotocols") or [])


def selected_subprotocol(conn: HTTPConnection) -> str | None:
    """Only ever the marker: a protocol that carries a token is never echoed back."""
    return SUBPROTOCOL_MARKER if SUBPROTOCOL_MARKER in offered_subprotocols(conn) else None


def origin_allowed(conn: HTTPConnection, config: Config) -> bool:
    """The handshake's Origin is on the allow-list, compared exactly (contract section 4).

    `https://app.example.com.evil.test` and `null` are just other strings; a missing Origin
    passes only when the deployment does not require one.
    """
    origins = conn.headers.getlist("origin")
    if not origins:
        return not config.origin_required
    return len(origins) == 1 and origins[0] in config.allowed_origins


async def authenticate_handshake(conn: HTTPConnection, config: Config, store: IdentityStore) -> Grant | None:
    """The grant of a valid token whose session is live, else None, whatever the cause.

    Without any token, a development instance accepts a developer login instead.
    """
    credentials = handshake_credentials(conn)
    if len(credentials) > 1:
        return None  # ambiguous: refused like an invalid token, with nothing looked up
    token = credentials[0] if credentials else None
    if token is None:
        return await developer_login(conn, config, store)
    return await verify_live_token(config, store, token)


async def verify_live_token(config: Config, store: IdentityStore, token: str) -> Grant | None:
    """A handshake's grant, with the user's plan and role, if the token verifies and its session is live.

    The token is checked first: one that cannot verify costs the database nothing, and is
    refused with 401 even while the database is out of reach. The standing may be one this
    instance kept: the grant carries its version, and counting the socket confirms it.
    """
    return await _live_grant(config, token, store.standing)


async def recheck_live_token(config: Config, store: IdentityStore, token: str) -> Grant | None:
    """Like verify_live_token, asking the database: to reauthenticate, where nothing counts a socket after."""
    return await _live_grant(config, token, store.live_standing)


async def _live_grant(config: Config, token: str,
                      standing_of: Callable[[UUID, UUID], Awaitable[Standing | None]]) -> Grant | None:
    """The token's grant with the standing ``standing_of`` finds for its session, or None."""
    grant = verify_access_token(config, token)
    if grant is None:
        return None
    standing = await standing_of(grant.identity.user_id, grant.identity.session_id)
    if standing is None:
        return None
    return dataclasses.replace(grant, plan=standing.plan, role=standing.role, standing=standing.version)


async def developer_login(conn: HTTPConnection, config: Config, store: IdentityStore) -> Grant | None:
    """`X-Dev-User: <email>` opens a socket for that user on a new session, in development only.

    In production the header is ignored, so the handshake is refused like any other
    without a token.
    """
    email = conn.headers.get(DEV_USER_HEADER, "").strip()
    if config.mode != "development" or not email:
        return None
    user = await store.run(lambda db_conn: db.find_user(db_conn, email))
    if user is None:
        return None
    _, refresh_hash = new_refresh_token()  # every session has one; nobody holds this one
    session_id = await store.run(lambda db_conn: db.create_session(db_conn, user["id"], DEV_DEVICE_TYPE, refresh_hash))
    return Grant(Identity(user["id"], session_id), expires_at=None, plan=user["plan"], role=user["role"])


def bearer_token(request: HTTPConnection) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None
