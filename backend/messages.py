"""The JSON envelope of every frame on /ws (contract section 5)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

CLIENT_TYPES = ("chat", "ping", "fence")


@dataclass(frozen=True)
class ClientMessage:
    type: str
    id: str
    payload: dict[str, Any]


class ProtocolError(Exception):
    """A client frame the server cannot act on; becomes an `error` frame on the same socket."""

    def __init__(self, code: str, message: str, id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.code, self.id, self.field = code, id, field

    def frame(self) -> dict[str, Any]:
        return error_frame(self.code, str(self), self.id, field=self.field)


def frame(type: str, id: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    """A server frame: the client envelope plus a UTC timestamp."""
    ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"type": type, "id": id, "payload": payload, "ts": ts}


def error_frame(code: str, message: str, id: str | None = None, field: str | None = None) -> dict[str, Any]:
    payload = {"code": code, "message": message}
    if field is not None:
        payload["field"] = field
    return frame("error", id, payload)


def encode(frame: dict[str, Any]) -> str:
    # ensure_ascii=False: the question travels as the user wrote it, not as \u escapes.
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def parse(text: str) -> ClientMessage:
    """Validate one client frame; raise ProtocolError with the code the contract assigns."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ProtocolError("invalid_json", "the frame is not valid JSON") from None
    message_id = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("invalid_message", 'expected a JSON object with a string "type"', message_id)
    kind = data["type"]
    if kind not in CLIENT_TYPES:
        raise ProtocolError(
            "unknown_type", f"unknown message type {kind[:40]!r}; expected one of {', '.join(CLIENT_TYPES)}", message_id
        )
    if data.get("id") is None:
        raise ProtocolError("missing_field", f'the {kind} message has no "id"', field="id")
    if message_id is None:
        raise ProtocolError("invalid_message", '"id" must be a string')
    payload = data.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ProtocolError("invalid_message", '"payload" must be a JSON object', message_id)
    if kind == "chat":
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("missing_field", 'the chat message has no "text" in its payload', message_id, "text")
    return ClientMessage(kind, message_id, payload)
