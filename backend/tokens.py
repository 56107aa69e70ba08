"""Access tokens (HS256 JWTs bound to one session) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from .config import Config

ALGORITHMS = ["HS256"]
REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "iss", "aud", "jti"]


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for."""

    user_id: uuid.UUID
    session_id: uuid.UUID


@dataclass(frozen=True)
class Grant:
    """What a socket was opened with: an identity, for a token its expiry, and the user's standing.

    Plan and role are the database's answer at the handshake (or what this instance kept of
    it); a token alone carries neither. `standing` is the version of the user's standing they
    were read under (standing.py), which counting the socket checks; None: nothing to check.
    """

    identity: Identity
    expires_at: int | None  # seconds since the epoch; None for a developer login, which has no token
    plan: str | None = None
    role: str | None = None
    standing: str | None = None


def issue_access_token(config: Config, identity: Identity) -> str:
    now = int(time.time())
    claims = {
        "sub": str(identity.user_id),
        "sid": str(identity.session_id),
        "iat": now,
        "exp": now + config.access_token_ttl_seconds,
        "iss": config.jwt_issuer,
        "aud": config.jwt_audience,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, config.jwt_secret, algorithm=ALGORITHMS[0])


def verify_access_token(config: Config, token: str) -> Grant | None:
    """The token's grant if its signature, expiry, issuer, audience and claims verify, else None.

    This checks the token alone; whether the session still exists is the database's call.
    """
    try:
        claims = jwt.decode(
            token,
            config.jwt_secret,
            algorithms=ALGORITHMS,
            audience=config.jwt_audience,
            issuer=config.jwt_issuer,
            options={"require": REQUIRED_CLAIMS},
        )
        return Grant(Identity(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])), int(claims["exp"]))
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        return None


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and the SHA-256 hex digest that is all the database keeps."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()
