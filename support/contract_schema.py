"""Every frame against the contract: the message schemas of docs/asyncapi.yaml, compiled once.

``ContractValidator.check(kind, sender, frame)`` says whether one frame is a message the
contract describes, for one kind of endpoint (``envelope``: /ws, /ws/{user_id},
/ws/v1/{user_id}; ``jsonrpc``: /ws/mcp) and one sender (``client`` or ``server``). It
returns None, or a problem a person can read: which message it was taken for, where in
the frame, and the schema path in the document.

Which messages a client may send and the server may send comes from the document's
operations: the messages of an operation with ``action: receive`` are the client's, those
of its ``reply`` and of an operation with ``action: send`` are the server's. A frame is
matched to its message by the ``const`` of its discriminating field (``type``; for the
legacy shape ``event``; for ``error`` frames, ``payload.code``; on JSON-RPC ``method``,
or ``result`` / ``error`` for responses, and arrays for batches), then validated against
that one message's schema. So a check costs one dictionary look-up and one schema
validation of a few fields: microseconds.

``FrameCheck`` is one scenario's use of it: it keeps the frames outside the contract, with
the socket they were seen on, until the scenario ends (as the leak detector keeps its
violations). No behave here.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"
ENVELOPE, JSONRPC = "envelope", "jsonrpc"
CLIENT, SERVER = "client", "server"
KINDS = {"/ws": ENVELOPE, "/ws/mcp": JSONRPC}  # channel address -> kind; the user paths speak /ws's

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Message:
    """One message of the document, compiled."""

    name: str          # the message's `name`, e.g. "agent_started", "error rate_limited"
    pointer: str       # where its payload schema is, e.g. "#/components/messages/agentStarted/payload"
    schema: dict
    validator: Draft7Validator


class ContractValidator:
    """The messages of docs/asyncapi.yaml, by kind of endpoint and sender, each schema compiled once."""

    def __init__(self, document: dict, source: str = "docs/asyncapi.yaml"):
        self.source = source
        self._document = document
        self._messages: dict[tuple[str, str], list[Message]] = {}
        self._index: dict[tuple[str, str], dict[Any, Any]] = {}
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str, str]] = Counter()   # (kind, sender, message name) -> frames
        self.problems: Counter[tuple[str, str]] = Counter()      # (kind, sender) -> frames outside the contract
        self.seconds = 0.0  # spent checking, for the run's summary: what the check costs the run
        for kind in (ENVELOPE, JSONRPC):
            for sender in (CLIENT, SERVER):
                messages = self._compile(kind, sender)
                self._messages[(kind, sender)] = messages
                self._index[(kind, sender)] = _index(messages)

    @classmethod
    def load(cls, path: Path = DOCUMENT) -> "ContractValidator":
        with open(path, encoding="utf-8") as stream:
            document = yaml.load(stream, Loader=_Loader)
        try:
            shown = str(Path(path).resolve().relative_to(DOCUMENT.parent.parent))
        except ValueError:
            shown = str(path)
        return cls(document, shown)

    # -- checking --------------------------------------------------------------------

    def check(self, kind: str, sender: str, frame: str | bytes | dict | list) -> str | None:
        """None when ``frame`` is a message ``sender`` may send on a ``kind`` endpoint; else the problem."""
        started = time.perf_counter()
        problem, name = self._check(kind, sender, frame)
        with self._lock:
            self.seconds += time.perf_counter() - started
            if problem is None:
                self.counts[(kind, sender, name)] += 1
            else:
                self.problems[(kind, sender)] += 1
        return problem

    def _check(self, kind: str, sender: str, frame: Any) -> tuple[str | None, str | None]:
        if isinstance(frame, bytes):
            return "a binary frame: every frame of the contract is JSON text", None
        if isinstance(frame, str):
            try:
                frame = json.loads(frame)
            except ValueError:
                return "not JSON: every frame of the contract is a JSON text frame", None
        message, problem = self._message_for(kind, sender, frame)
        if message is None:
            return problem, None
        if message.validator.is_valid(frame):
            return None, message.name
        error = best_match(message.validator.iter_errors(frame))
        where = "/".join(str(part) for part in error.absolute_path) or "the frame"
        schema_path = "/".join(str(part) for part in error.absolute_schema_path)
        return (f"not the contract's {message.name!r} message: at {where}: {error.message} "
                f"(schema path {self.source}{message.pointer}/{schema_path})"), None

    def _message_for(self, kind: str, sender: str, frame: Any) -> tuple[Message | None, str | None]:
        index = self._index[(kind, sender)]
        where = f"from the {sender} on the {kind} endpoints"
        if kind == ENVELOPE:
            if not isinstance(frame, dict):
                return None, f"a JSON {_json_type(frame)}; every frame {where} is a JSON object"
            if "type" in frame:
                field, value = "type", frame["type"]
            elif "event" in frame:
                field, value = "event", frame["event"]  # the legacy shape
            else:
                return None, f'an object without "type"; every frame {where} names its type'
            entry = index.get((field, _hashable(value)))
            if entry is None:
                known = sorted({str(key[1]) for key in index if key[0] == field})
                return None, f'no message {where} has {field} {value!r} (the contract has {", ".join(known)})'
            if isinstance(entry, Message):
                return entry, None
            payload = frame.get("payload")
            code = payload.get("code") if isinstance(payload, dict) else None
            message = entry.get(_hashable(code))
            if message is None:
                return None, (f"no {value!r} frame {where} has the code {code!r} "
                              f"(the contract has {', '.join(sorted(map(str, entry)))})")
            return message, None
        # JSON-RPC: a batch is an array; a request names its method; a response has result or error.
        if isinstance(frame, list):
            key: Any = ("array",)
        elif isinstance(frame, dict):
            if sender == CLIENT:
                key = ("method", _hashable(frame.get("method")))
            else:
                key = ("response", "error" if "error" in frame else "result")
        else:
            return None, f"a JSON {_json_type(frame)}; every frame {where} is a JSON-RPC object or batch"
        message = index.get(key)
        if message is None:
            known = sorted(str(key[1]) for key in index if key[0] == "method")
            what = f"the method {key[1]!r}" if key[0] == "method" else "this shape"
            return None, f"no message {where} has {what}" + (f" (the contract has {', '.join(known)})" if known else "")
        return message, None

    # -- what was seen ---------------------------------------------------------------

    @property
    def validated(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line: how many frames were validated, per message type, and how many were outside."""
        with self._lock:
            counts, outside, seconds = dict(self.counts), sum(self.problems.values()), self.seconds
        if not counts and not outside:
            return "no frame checked"
        parts = []
        for kind in (ENVELOPE, JSONRPC):
            for sender in (CLIENT, SERVER):
                seen = sorted(((name, n) for (k, s, name), n in counts.items() if (k, s) == (kind, sender)),
                              key=lambda item: (-item[1], item[0]))
                if seen:
                    parts.append(f"{kind} from the {sender}: " + ", ".join(f"{name} {n}" for name, n in seen))
        total = sum(counts.values())
        cost = f" (checked in {seconds:.2f} s, {seconds / max(1, total + outside) * 1e6:.0f} us a frame)"
        return f"{total} frames valid, {outside} outside the contract{cost}; " + "; ".join(parts)

    # -- compiling -------------------------------------------------------------------

    def _compile(self, kind: str, sender: str) -> list[Message]:
        document = self._document
        channels = [cid for cid, channel in document["channels"].items() if KINDS.get(channel["address"]) == kind]
        names: dict[str, None] = {}
        for operation in document.get("operations", {}).values():
            channel_id = _pointer_name(operation["channel"]["$ref"], "#/channels/")
            if channel_id not in channels:
                continue
            own = CLIENT if operation["action"] == "receive" else SERVER
            if own == sender:
                names.update(dict.fromkeys(self._component_names(channel_id, operation.get("messages", []))))
            reply = operation.get("reply")
            if reply and sender != own:
                reply_channel = _pointer_name(reply.get("channel", operation["channel"])["$ref"], "#/channels/")
                names.update(dict.fromkeys(self._component_names(reply_channel, reply.get("messages", []))))
        messages = []
        for component in names:
            message = document["components"]["messages"][component]
            schema = _resolved(message["payload"], document)
            Draft7Validator.check_schema(schema)
            messages.append(Message(message.get("name", component), f"#/components/messages/{component}/payload",
                                    schema, Draft7Validator(schema)))
        return messages

    def _component_names(self, channel_id: str, references: list[dict]) -> list[str]:
        names = []
        for reference in references:
            key = _pointer_name(reference["$ref"], f"#/channels/{channel_id}/messages/")
            target = self._document["channels"][channel_id]["messages"][key]
            names.append(_pointer_name(target["$ref"], "#/components/messages/") if "$ref" in target else key)
        return names


def _index(messages: list[Message]) -> dict[Any, Any]:
    """Discriminator -> Message, or for a type several messages share (error) code -> Message."""
    index: dict[Any, Any] = {}
    for message in messages:
        schema = message.schema
        if schema.get("type") == "array":
            index[("array",)] = message
            continue
        properties = schema.get("properties", {})
        if "method" in properties:
            index[("method", properties["method"]["const"])] = message
        elif "result" in properties:
            index[("response", "result")] = message
        elif "error" in properties and "jsonrpc" in properties:
            index[("response", "error")] = message
        else:
            field = "type" if "type" in properties else "event"
            key = (field, properties[field]["const"])
            code = properties.get("payload", {}).get("properties", {}).get("code", {}).get("const")
            if code is None:
                index[key] = message
            else:
                index.setdefault(key, {})[code] = message
    return index


def _resolved(node: Any, document: dict, seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points to (the schemas are not recursive)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise ValueError(f"{ref} refers to itself; the frame schemas must not be recursive")
            target: Any = document
            for part in ref.removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return _resolved(target, document, seen + (ref,))
        return {key: _resolved(value, document, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(item, document, seen) for item in node]
    return node


def _pointer_name(ref: str, prefix: str) -> str:
    if not ref.startswith(prefix):
        raise ValueError(f"expected a reference under {prefix}, got {ref}")
    return ref[len(prefix):]


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else json.dumps(value, sort_keys=True)


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


# -- one scenario's frames ---------------------------------------------------------------

@dataclass(frozen=True)
class FrameViolation:
    """One frame the contract does not describe, and the socket it was seen on."""

    socket: str     # whose socket, e.g. "Alice's laptop"
    endpoint: str   # the socket's URL path
    sender: str
    problem: str
    frame: str      # redacted

    def __str__(self) -> str:
        excerpt = self.frame if len(self.frame) <= 400 else self.frame[:400] + "..."
        did = "received" if self.sender == SERVER else "sent"
        return f"frame outside the contract: {self.socket} {did} on {self.endpoint}: {self.problem}; frame: {excerpt}"


class ContractViolation(AssertionError):
    """Raised at a scenario's end when any of its frames is not a message of the contract."""

    def __init__(self, violations: list[FrameViolation]):
        self.violations = violations
        lines = [str(v) for v in violations[:5]]
        if len(violations) > 5:
            lines.append(f"... and {len(violations) - 5} more")
        super().__init__("\n".join(lines))


class FrameCheck:
    """One scenario's frames against the contract. Each socket reports what it sends and receives."""

    def __init__(self, validator: ContractValidator, redact: Callable[[str], str] = lambda text: text):
        self.validator = validator
        self._redact = redact
        self._violations: list[FrameViolation] = []
        self._reported = 0
        self._lock = threading.Lock()

    def inspect(self, socket: str, endpoint: str, kind: str, sender: str, frame: str | bytes | dict | list,
                text: str | None = None) -> FrameViolation | None:
        """Check one frame seen on ``socket``; ``text`` is how to show it when ``frame`` is already parsed."""
        problem = self.validator.check(kind, sender, frame)
        if problem is None:
            return None
        if text is None:
            text = frame if isinstance(frame, str) else (
                f"<binary frame, {len(frame)} bytes>" if isinstance(frame, bytes) else json.dumps(frame))
        violation = FrameViolation(socket, endpoint, sender, self._redact(problem), self._redact(text))
        with self._lock:
            self._violations.append(violation)
        return violation

    @property
    def violations(self) -> list[FrameViolation]:
        with self._lock:
            return list(self._violations)

    def raise_if_violated(self) -> None:
        """Fail with every violation not yet reported; each is reported once."""
        with self._lock:
            fresh = self._violations[self._reported:]
            self._reported = len(self._violations)
        if fresh:
            raise ContractViolation(fresh)
