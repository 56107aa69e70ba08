"""Mints access tokens, good and deliberately bad, with the target's key and claims."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from .redaction import jwt_claims_unverified

# The kinds of invalid token a feature can name, each refused at the handshake.
BAD_TOKEN_KINDS = (
    "malformed", "tampered", "wrong signature", "wrong issuer", "wrong audience",
    "unknown user", "expired",
)


@dataclass(frozen=True)
class TokenFactory:
    """Signs tokens the way the target does, so a bad token differs in exactly one way."""

    signing_key: str
    algorithm: str
    issuer: str
    audience: str

    @classmethod
    def for_target(cls, settings, config_document: dict) -> "TokenFactory":
        """Key from the settings; issuer and audience from the target's config document."""
        auth = config_document.get("auth", {})
        key = settings.jwt_secret
        if settings.jwt_private_key_file:
            key = Path(settings.jwt_private_key_file).read_text()
        return cls(key, settings.jwt_algorithm, auth.get("issuer", ""), auth.get("audience", ""))

    def mint(self, user_id: str, session_id: str, *, lifetime: float = 300,
             issuer: str | None = None, audience: str | None = None,
             key: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "sub": user_id, "sid": session_id, "iat": now, "exp": now + int(lifetime),
            "iss": self.issuer if issuer is None else issuer,
            "aud": self.audience if audience is None else audience,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.signing_key if key is None else key, algorithm=self.algorithm)

    @staticmethod
    def expiry(token: str) -> float:
        """The token's ``exp`` claim, seconds since the epoch."""
        return float(jwt_claims_unverified(token)["exp"])

    def bad_token(self, kind: str, user_id: str, session_id: str) -> str:
        """A token for this user and session that is invalid in the way ``kind`` names."""
        if kind == "malformed":
            return "not-a-jwt." + uuid.uuid4().hex
        if kind == "tampered":
            token = self.mint(user_id, session_id)
            header, _, signature = token.split(".")
            claims = jwt_claims_unverified(token)
            claims["sub"] = str(uuid.uuid4())  # payload changed, signature kept
            forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
            return f"{header}.{forged.decode()}.{signature}"
        if kind == "wrong signature":
            return jwt.encode(jwt_claims_unverified(self.mint(user_id, session_id)),
                              "not-the-target-secret-" + uuid.uuid4().hex, algorithm="HS256")
        if kind == "wrong issuer":
            return self.mint(user_id, session_id, issuer="someone-else")
        if kind == "wrong audience":
            return self.mint(user_id, session_id, audience="another-product")
        if kind == "unknown user":
            return self.mint(str(uuid.uuid4()), str(uuid.uuid4()))
        if kind == "expired":
            return self.mint(user_id, session_id, lifetime=-60)
        raise ValueError(f"unknown kind of bad token {kind!r}; expected one of {', '.join(BAD_TOKEN_KINDS)}")
