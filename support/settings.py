"""Where the specification points: read once from behave userdata and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and what is expected."""


# name in behave userdata (-D name=value) -> environment variable
_NAMES = {
    "target_url": "TARGET_URL",
    "jwt_secret": "JWT_SECRET",
    "jwt_private_key_file": "JWT_PRIVATE_KEY_FILE",
    "jwt_algorithm": "JWT_ALGORITHM",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "backstop_seconds": "SPEC_BACKSTOP_SECONDS",
    "event_timeout_seconds": "SPEC_EVENT_TIMEOUT_SECONDS",
    "operator_token": "OPERATOR_TOKEN",
    "frame_check": "SPEC_FRAME_CHECK",
    "load": "SPEC_LOAD",
}
# Which load profiles run (features/performance/): the small one always, the large one on request.
LOAD_PROFILES = ("small", "large")


@dataclass(frozen=True)
class Settings:
    """The target and the services the checks read.

    ``target_url`` unset means the embedded default: the harness starts the reference
    backend itself, on embedded PostgreSQL and Redis unless their URLs are given.
    """

    target_url: str | None = None
    jwt_secret: str | None = None
    jwt_private_key_file: str | None = None
    jwt_algorithm: str = "HS256"
    database_url: str | None = None
    redis_url: str | None = None
    # How long "nothing else arrives" is awaited after a fence has come back.
    backstop_seconds: float = 0.1
    # How long any expected frame or answer may take before a step fails.
    event_timeout_seconds: float = 5.0
    # The deployment's operator credential: plan and role changes, health details (docs/contract.md,
    # section 14). Generated for the embedded default.
    operator_token: str | None = None
    # Every frame checked against docs/asyncapi.yaml (SPEC_FRAME_CHECK=off turns it off).
    frame_check: bool = True
    # "large" also runs the scenarios tagged @load.large (a release-size crowd, minutes long).
    load: str = "small"

    @classmethod
    def load(cls, userdata: Mapping[str, str] | None = None,
             environ: Mapping[str, str] | None = None) -> "Settings":
        userdata = userdata or {}
        environ = os.environ if environ is None else environ
        raw: dict[str, str] = {}
        for name, variable in _NAMES.items():
            value = userdata.get(name, environ.get(variable))
            if value not in (None, ""):
                raw[name] = value
        for name in ("backstop_seconds", "event_timeout_seconds"):
            if name in raw:
                try:
                    raw[name] = float(raw[name])
                except ValueError:
                    raise SettingsError(
                        f"{_NAMES[name]} / -D {name} must be a number of seconds, got {raw[name]!r}"
                    ) from None
        if "frame_check" in raw:
            flag = str(raw["frame_check"]).strip().lower()
            if flag not in ("on", "off"):
                raise SettingsError(f"SPEC_FRAME_CHECK / -D frame_check must be on or off, got {raw['frame_check']!r}")
            raw["frame_check"] = flag == "on"
        if "load" in raw:
            raw["load"] = str(raw["load"]).strip().lower()
            if raw["load"] not in LOAD_PROFILES:
                raise SettingsError(f"SPEC_LOAD / -D load must be {' or '.join(LOAD_PROFILES)}, got {raw['load']!r}")
        settings = cls(**raw)
        settings._validate()
        return settings

    def _validate(self) -> None:
        if self.target_url is not None:
            for url in self.target_url.split(","):
                if not url.strip().startswith(("http://", "https://")):
                    raise SettingsError(
                        f"TARGET_URL must list URLs starting with http:// or https://, got {url.strip()!r}")
            if not (self.jwt_secret or self.jwt_private_key_file):
                raise SettingsError(
                    "TARGET_URL is set but neither JWT_SECRET nor JWT_PRIVATE_KEY_FILE is: the "
                    "suite needs the target's signing key to mint deliberately bad tokens")
        if self.jwt_private_key_file and self.jwt_algorithm == "HS256":
            raise SettingsError("JWT_PRIVATE_KEY_FILE needs JWT_ALGORITHM (e.g. RS256 or ES256)")

    @property
    def embedded_backend(self) -> bool:
        return self.target_url is None

    @property
    def target_urls(self) -> list[str]:
        """Every instance of the target (TARGET_URL may list several, comma-separated)."""
        if self.target_url is None:
            raise SettingsError("no target yet: the embedded backend has not been started")
        return [url.strip().rstrip("/") for url in self.target_url.split(",") if url.strip()]


def websocket_base(http_url: str) -> str:
    """An instance's base URL with the WebSocket scheme."""
    return "ws" + http_url.rstrip("/")[len("http"):]
