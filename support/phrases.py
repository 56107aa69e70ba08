"""The words features use, parsed into what the harness works with.

Registered once as behave parse types, so every step module reads the same phrases the
same way: names ("Alice, Bob and Carol"), devices ("her laptop and her phone"), tokens
("an expired token"), published settings ("messages per minute").
"""

from __future__ import annotations

import re

import parse
from behave import register_type

from .actors import DEVICE_TYPES

_NAME = r"[A-Z][a-z]+"
_DEVICE = r"(?:her|his|their|a) (?:" + "|".join(sorted(DEVICE_TYPES, key=len, reverse=True)) + ")"
_SEPARATOR = r"(?:, and |, | and )"

# How a feature names a token -> the TokenFactory kind (None: no token at all).
TOKEN_PHRASES = {
    "no token": None,
    "a malformed token": "malformed",
    "a tampered token": "tampered",
    "a token signed with the wrong key": "wrong signature",
    "a token from the wrong issuer": "wrong issuer",
    "a token for the wrong audience": "wrong audience",
    "a token for an unknown user": "unknown user",
    "an expired token": "expired",
}

# How a feature names a setting of the config document -> its path in the document.
PUBLISHED_SETTINGS = {
    "connections per user": ("limits", "max_connections_per_user"),
    "message size in bytes": ("limits", "max_message_bytes"),
    "messages per minute": ("limits", "messages_per_minute"),
    "heartbeat interval": ("heartbeat", "interval_seconds"),
    "heartbeat timeout": ("heartbeat", "timeout_seconds"),
    "handshake timeout": ("timeouts", "handshake_seconds"),
    "authentication methods": ("auth", "methods"),
    "mode": ("mode",),
    "WebSocket endpoint": ("endpoints", "websocket"),
}

# How a feature names a token carrier -> the name in the config document's auth methods.
CARRIER_METHODS = {
    "bearer header": "bearer_header",
    "prefixed subprotocol": "subprotocol_jwt_prefix",
    "encoded subprotocol": "subprotocol_base64url",
}


def _split(text: str) -> list[str]:
    return [part for part in re.split(_SEPARATOR, text.strip()) if part]


@parse.with_pattern(_NAME)
def parse_name(text: str) -> str:
    return text


@parse.with_pattern(f"{_NAME}(?:{_SEPARATOR}{_NAME})*")
def parse_names(text: str) -> list[str]:
    return _split(text)


@parse.with_pattern(_DEVICE)
def parse_device(text: str) -> str:
    return text.split(" ", 1)[1]


@parse.with_pattern(f"{_DEVICE}(?:{_SEPARATOR}{_DEVICE})*")
def parse_devices(text: str) -> list[str]:
    return [part.split(" ", 1)[1] for part in _split(text)]


@parse.with_pattern("|".join(re.escape(p) for p in sorted(TOKEN_PHRASES, key=len, reverse=True)))
def parse_token(text: str) -> str | None:
    return TOKEN_PHRASES[text]


@parse.with_pattern(r"\d{3}(?: or \d{3})*")
def parse_statuses(text: str) -> set[int]:
    return {int(code) for code in text.split(" or ")}


_registered = False


def register_phrases() -> None:
    """Register the parse types with behave (idempotent: each step module calls it)."""
    global _registered
    if not _registered:
        register_type(Name=parse_name, Names=parse_names, Device=parse_device,
                      Devices=parse_devices, Token=parse_token, Statuses=parse_statuses)
        _registered = True
