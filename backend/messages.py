"""The JSON envelope of every frame on /ws (contract section 5)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

# Each client type and the payload fields it cannot do without (non-empty strings).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "chat": ("text",),
    "ping": (),
    "fence": (),
    "reauthenticate": ("token",),
    "thread_create": ("title", "scope"),
    "thread_read": ("thread_id",),
    "thread_post": ("thread_id", "text"),
    "thread_subscribe": ("thread_id",),
    "thread_list": (),
}
CLIENT_TYPES = tuple(REQUIRED_FIELDS)
# Not counted against the rate limit: they cost nothing and keep a connection honest.
UNCOUNTED_TYPES = ("ping", "fence")
# Legacy `event`s with a documented translation to the envelope.
LEGACY_EVENTS = ("chat", "ping")
# A \uD800-\uDFFF escape somewhere in the text: the frame may decode to a lone surrogate.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class ClientMessage:
    type: str
    id: str
    payload: dict[str, Any]


class ProtocolError(Exception):
    """A client frame the server cannot act on; becomes an `error` frame on the same socket."""

    def __init__(self, code: str, message: str, id: str | None = None, **extra: Any):
        super().__init__(message)
        self.code, self.id, self.extra = code, id, extra

    def frame(self) -> dict[str, Any]:
        return error_frame(self.code, str(self), self.id, **self.extra)


def frame(type: str, id: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    """A server frame: the client envelope plus a UTC timestamp."""
    return {"type": type, "id": id, "payload": payload, "ts": timestamp(datetime.now(timezone.utc))}


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as every `ts` is written."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_frame(code: str, message: str, id: str | None = None, **extra: Any) -> dict[str, Any]:
    """An `error` frame; `extra` adds the fields the contract lists for the code (field, type, ...)."""
    payload = {"code": code, "message": message}
    payload.update({name: value for name, value in extra.items() if value is not None})
    return frame("error", id, payload)


def encode(frame: dict[str, Any] | list[Any]) -> str:
    # ensure_ascii=False: the question travels as the user wrote it, not as \u escapes.
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


class NotJsonText(ValueError):
    """JSON the decoder took, or could not take for its depth, that is still no usable text."""


def loads(text: str) -> Any:
    """A client frame's JSON, or ValueError: also for JSON nested too deeply to decode, and for
    JSON whose strings hold a lone surrogate escape (`"\\ud800"`), which is no Unicode text
    (RFC 8259 8.2, RFC 7493 2.1) and could not be sent on, stored or answered.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise NotJsonText("the frame is not valid JSON: it is nested too deeply") from None
    if SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(data):
        raise NotJsonText("the frame is not valid JSON text: a string holds a lone surrogate escape "
                          "such as \\ud800, which is no Unicode character") from None
    return data


def _holds_lone_surrogate(data: Any) -> bool:
    # Pairs were joined by the decoder, so any surrogate left is a lone one. A loop, not
    # recursion: the data may be nested as deeply as the decoder allowed.
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def parse(text: str) -> ClientMessage:
    """Validate one client frame; raise ProtocolError with the code the contract assigns."""
    try:
        data = loads(text)
    except NotJsonText as exc:
        raise ProtocolError("invalid_json", str(exc)) from None
    except ValueError:
        raise ProtocolError("invalid_json", "the frame is not valid JSON") from None
    if isinstance(data, dict) and "type" not in data and isinstance(data.get("event"), str):
        data = translate_legacy(data)
    message_id = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("invalid_message", 'expected a JSON object with a string "type"', message_id)
    kind = data["type"]
    if kind not in CLIENT_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}; expected one of {', '.join(CLIENT_TYPES)}",
                            message_id, type=kind[:200])
    if data.get("id") is None:
        raise ProtocolError("missing_field", f'the {kind} message has no "id"', field="id")
    if message_id is None:
        raise ProtocolError("invalid_message", '"id" must be a string')
    payload = data.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ProtocolError("invalid_message", '"payload" must be a JSON object', message_id)
    for name in REQUIRED_FIELDS[kind]:
        value = payload.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ProtocolError("missing_field", f'the {kind} message has no "{name}" in its payload', message_id,
                                field=name)
    return ClientMessage(kind, message_id, payload)


def translate_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """`{"event", "data", "request_id"}` from older clients, as an envelope, where one is documented."""
    event, request_id = data["event"], data.get("request_id")
    if event not in LEGACY_EVENTS:
        raise ProtocolError("legacy_not_supported", f"the legacy event {event[:40]!r} has no translation; "
                            "send the envelope {\"type\", \"id\", \"payload\"}",
                            request_id if isinstance(request_id, str) else None, event=event[:200])
    return {"type": event, "id": request_id, "payload": data.get("data")}
