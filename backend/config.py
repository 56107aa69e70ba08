"""Configuration: one frozen dataclass, built and validated from environment variables."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .plans import DEFAULT_FILE, Catalogue, PlansError, load as load_plans
from .tools import TOOLS

MODES = ("development", "production")
# An exact browser origin: scheme, host and optional port, nothing after.
ORIGIN = re.compile(r"https?://([a-z0-9.-]+|\[[0-9a-f:]+\])(:[0-9]{1,5})?")
FLAGS = {"true": True, "false": False}
OPERATOR_TOKEN_MIN_CHARS = 32
# Settings of contract version 2 that the plans file has taken over (contract v3, section 7).
RETIRED = {"MAX_CONNECTIONS_PER_USER": "max_connections_per_user", "MESSAGES_PER_MINUTE": "messages_per_minute"}


# Signing secrets published in this repository, its examples or common tutorials: anyone
# could sign tokens with them. "change-me-in-production" is what docker-compose.yml used to
# fall back to.
KNOWN_SECRETS = frozenset({
    "change-me-in-production", "change-me", "changeme", "secret", "jwt-secret", "jwt_secret", "your-secret-key",
    "your-256-bit-secret", "supersecret", "super-secret-key", "development-secret", "test-secret",
})
# RFC 8725, 3.5: an HMAC key at least as long as the hash output (SHA-256: 32 bytes).
MIN_SECRET_BYTES = 32


def weak_secret(secret: str) -> str | None:
    """Why `secret` must not sign production tokens, in a few words; None if it may."""
    if secret.strip().lower() in KNOWN_SECRETS:
        return "JWT_SECRET is a published default secret (anyone can sign tokens with it)"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return (f"JWT_SECRET is {len(secret.encode())} bytes; expected at least {MIN_SECRET_BYTES} random bytes "
                "(RFC 8725, 3.5)")
    return None


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what was expected."""


@dataclass(frozen=True)
class Config:
    # URLs may carry passwords and the secret signs tokens: keep them out of repr().
    database_url: str = field(repr=False)
    redis_url: str = field(repr=False)
    jwt_secret: str = field(repr=False)
    jwt_issuer: str = "reference-backend"
    jwt_audience: str = "chat-clients"
    mode: str = "production"
    access_token_ttl_seconds: int = 900
    # Timers may be fractional (tests run them sub-second); published as given.
    heartbeat_interval_seconds: float = 25
    heartbeat_timeout_seconds: float = 20
    handshake_timeout_seconds: float = 10
    identity_store_cooldown_seconds: float = 30
    max_message_bytes: int = 8192
    # What a resuming client can get back (contract section 6a): a session's last N events, at most this old.
    resume_retained_events: int = 100
    resume_retained_seconds: float = 300
    # Sockets (and handshakes under way) one instance holds at once; past it, 503 at_capacity.
    max_sockets_per_instance: int = 10000
    allowed_origins: tuple[str, ...] = ("https://app.example.com",)
    origin_required: bool = True
    plans: Catalogue = field(default_factory=lambda: _plans({}), repr=False)
    # The operator credential (contract section 14): plan and role changes, health details.
    # None: this instance has no operator API; in production nobody can change entitlements
    # over HTTP then.
    operator_token: str | None = field(default=None, repr=False)
    # log2 of scrypt's N for new password hashes; lower only in development (faster sign-ups).
    password_hash_cost: int = 14

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        """Read every setting from `env`; raise ConfigError on the first bad one."""
        mode = _choice(env, "BACKEND_MODE", MODES, "production")
        for name, key in RETIRED.items():
            if name in env:
                raise ConfigError(f"{name} is no longer read; set {key} for each plan in the plans file (PLANS_FILE)")
        return cls(
            database_url=_url(env, "DATABASE_URL", ("postgresql://", "postgres://")),
            redis_url=_url(env, "REDIS_URL", ("redis://", "rediss://", "unix://")),
            jwt_secret=_required(env, "JWT_SECRET", "the HS256 signing secret for access tokens"),
            jwt_issuer=_text(env, "JWT_ISSUER", "reference-backend"),
            jwt_audience=_text(env, "JWT_AUDIENCE", "chat-clients"),
            mode=mode,
            access_token_ttl_seconds=_positive(env, "ACCESS_TOKEN_TTL_SECONDS", 900),
            heartbeat_interval_seconds=_seconds(env, "HEARTBEAT_INTERVAL_SECONDS", 25),
            heartbeat_timeout_seconds=_seconds(env, "HEARTBEAT_TIMEOUT_SECONDS", 20),
            handshake_timeout_seconds=_seconds(env, "HANDSHAKE_TIMEOUT_SECONDS", 10),
            identity_store_cooldown_seconds=_seconds(env, "IDENTITY_STORE_COOLDOWN_SECONDS", 30),
            max_message_bytes=_positive(env, "MAX_MESSAGE_BYTES", 8192),
            resume_retained_events=_positive(env, "RESUME_RETAINED_EVENTS", 100),
            resume_retained_seconds=_seconds(env, "RESUME_RETAINED_SECONDS", 300),
            max_sockets_per_instance=_positive(env, "MAX_SOCKETS_PER_INSTANCE", 10000),
            allowed_origins=_origins(env, "ALLOWED_ORIGINS", ("https://app.example.com",)),
            # Browsers always send Origin; only development tools commonly omit it.
            origin_required=_flag(env, "ORIGIN_REQUIRED", mode == "production"),
            plans=_plans(env),
            operator_token=_operator_token(env),
            password_hash_cost=_positive(env, "PASSWORD_HASH_COST", 14),
        )


def _plans(env: Mapping[str, str]) -> Catalogue:
    raw = env.get("PLANS_FILE")
    if raw is not None and not raw.strip():
        raise ConfigError(f"PLANS_FILE is empty; expected the path of a plans file like {DEFAULT_FILE}")
    path = Path(raw.strip()) if raw is not None else DEFAULT_FILE
    try:
        return load_plans(path, TOOLS)
    except PlansError as exc:
        raise ConfigError(f"PLANS_FILE: {exc}") from None


def _operator_token(env: Mapping[str, str]) -> str | None:
    raw = env.get("OPERATOR_TOKEN")
    if raw is None:
        return None
    value = raw.strip()
    if len(value) < OPERATOR_TOKEN_MIN_CHARS:
        raise ConfigError(f"OPERATOR_TOKEN is {len(value)} characters long; expected a random secret of at least "
                          f"{OPERATOR_TOKEN_MIN_CHARS} (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
                          "or leave it unset for no operator API")
    return value


def _required(env: Mapping[str, str], name: str, meaning: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set; expected {meaning}")
    return value


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str:
    value = _required(env, name, "a URL starting with " + " or ".join(schemes))
    if not value.startswith(schemes):
        scheme = value.split(":", 1)[0] if ":" in value else value[:20]
        raise ConfigError(f"{name} has scheme {scheme!r}; expected a URL starting with " + " or ".join(schemes))
    return value


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    if value is None:
        return default
    if not value.strip():
        raise ConfigError(f"{name} is empty; expected a non-empty string (default {default!r})")
    return value.strip()


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, default).strip()
    if value not in choices:
        raise ConfigError(f"{name} is {value!r}; expected one of {', '.join(choices)}")
    return value


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{name} is {raw!r}; expected a positive whole number (default {default})")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive duration; whole numbers stay ints so they are published as given."""
    raw = env.get(name)
    if raw is None:
        return default
    text = raw.strip()
    try:
        value: float = int(text) if text.isdigit() else float(text)
    except ValueError:
        value = 0
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{name} is {raw!r}; expected a positive number of seconds, e.g. 10 or 0.5 (default {default})")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.strip().lower() not in FLAGS:
        raise ConfigError(f"{name} is {raw!r}; expected true or false")
    return FLAGS[raw.strip().lower()]


def _origins(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    # Scheme and host are case-insensitive and browsers send them in lower case.
    origins = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    bad = [origin for origin in origins if not ORIGIN.fullmatch(origin)]
    if not origins or bad:
        got = f"holds {bad[0]!r}" if bad else "is empty"
        raise ConfigError(f"{name} {got}; expected comma-separated origins like https://app.example.com "
                          "(scheme, host and optional port, no path)")
    return origins
