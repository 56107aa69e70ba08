"""The words features use, parsed into what the harness works with.

Registered once as behave parse types, so every step module reads the same phrases the
same way: names ("Alice, Bob and Carol"), devices ("her laptop and her phone"), tokens
("an expired token"), published settings ("messages per minute").
"""

from __future__ import annotations

import json
import re

import parse
from behave import register_type

from .actors import DEVICE_TYPES
from .instances import ADDRESSES

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
    "agent runs per day": ("limits", "agent_runs_per_day"),
}

# How a feature names a token carrier -> the name in the config document's auth methods.
CARRIER_METHODS = {
    "bearer header": "bearer_header",
    "prefixed subprotocol": "subprotocol_jwt_prefix",
    "encoded subprotocol": "subprotocol_base64url",
}


# How a feature names why a socket was closed -> the close code (docs/contract.md).
CLOSE_REASONS = {
    "normal closure": 1000,
    "invalid text": 1007,
    "message too big": 1009,
    "token expired": 4001,
    "reauthentication refused": 4003,
    "connection limit": 4008,
    "session revoked": 4009,
}


def close_code(reason: str) -> int:
    try:
        return CLOSE_REASONS[reason]
    except KeyError:
        raise ValueError(f"unknown disconnect reason {reason!r}; the features know {', '.join(CLOSE_REASONS)}") from None


MALFORMED_MESSAGES = (
    "text that is not JSON", "a JSON list", "a binary frame", 'a legacy "subscribe" message',
    'a message of the unknown type "dance"', "a question without any text",
)
JSON_RPC_REQUESTS = (
    "text that is not JSON", "a request without a method", "an empty batch",
    'a call of the method "weather/today"', "a tool call without a tool name",
)


def malformed_message(phrase: str, message_id: str) -> str | bytes:
    """The frame a feature's words describe, for the families of bad input on /ws."""
    frames = {
        "text that is not JSON": "this is {not json",
        "a JSON list": "[1, 2, 3]",
        "a binary frame": b"\x00\x01 binary bytes",
        'a legacy "subscribe" message': json.dumps({"event": "subscribe", "data": {"topic": "news"},
                                                    "request_id": message_id}),
        'a message of the unknown type "dance"': json.dumps({"type": "dance", "id": message_id, "payload": {}}),
        "a question without any text": json.dumps({"type": "chat", "id": message_id, "payload": {}}),
    }
    try:
        return frames[phrase]
    except KeyError:
        raise ValueError(f"unknown kind of message {phrase!r}; the features know {', '.join(frames)}") from None


def json_rpc_request(phrase: str, request_id: int) -> str:
    """The JSON-RPC frame a feature's words describe."""
    frames = {
        "text that is not JSON": "{not json",
        "a request without a method": json.dumps({"jsonrpc": "2.0", "id": request_id}),
        "an empty batch": "[]",
        'a call of the method "weather/today"': json.dumps({"jsonrpc": "2.0", "id": request_id,
                                                            "method": "weather/today"}),
        "a tool call without a tool name": json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                                                       "params": {"arguments": {}}}),
    }
    try:
        return frames[phrase]
    except KeyError:
        raise ValueError(f"unknown kind of request {phrase!r}; the features know {', '.join(frames)}") from None


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


_DEVICE_NAME = "(?:" + "|".join(sorted(DEVICE_TYPES, key=len, reverse=True)) + ")"


@parse.with_pattern(f"{_DEVICE_NAME}(?:{_SEPARATOR}{_DEVICE_NAME})*")
def parse_device_names(text: str) -> list[str]:
    return _split(text)


@parse.with_pattern(r"\d{3}(?: or \d{3})*")
def parse_statuses(text: str) -> set[int]:
    return {int(code) for code in text.split(" or ")}


def _alternatives(phrases) -> str:
    return "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))


@parse.with_pattern(_DEVICE_NAME)
def parse_device_name(text: str) -> str:
    return text


@parse.with_pattern(r"[a-z_]+")
def parse_code(text: str) -> str:
    return text


@parse.with_pattern(r'[^"]+')
def parse_quoted(text: str) -> str:
    """Text between double quotes, never spanning a quote (so steps cannot swallow each other)."""
    return text


@parse.with_pattern(_alternatives(MALFORMED_MESSAGES))
def parse_malformed(text: str) -> str:
    return text


@parse.with_pattern(_alternatives(JSON_RPC_REQUESTS))
def parse_rpc_request(text: str) -> str:
    return text


@parse.with_pattern(_alternatives(CLOSE_REASONS))
def parse_reason(text: str) -> int:
    return CLOSE_REASONS[text]


@parse.with_pattern(_alternatives(ADDRESSES))
def parse_address(text: str) -> str:
    return ADDRESSES[text]


_registered = False


def register_phrases() -> None:
    """Register the parse types with behave (idempotent: each step module calls it)."""
    global _registered
    if not _registered:
        register_type(Name=parse_name, Names=parse_names, Device=parse_device, Devices=parse_devices,
                      DeviceName=parse_device_name, DeviceNames=parse_device_names, Token=parse_token,
                      Statuses=parse_statuses, Code=parse_code, Quoted=parse_quoted, Malformed=parse_malformed,
                      RpcRequest=parse_rpc_request, Reason=parse_reason, Address=parse_address)
        _registered = True
