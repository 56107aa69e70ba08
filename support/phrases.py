"""The words features use, parsed into what the harness works with.

Each blank a step sentence may hold (``{name:Name}``, ``{devices:Devices}``, ``{count:Questions}``)
is a phrase type defined here, once: the pattern it matches, what it turns the words into, and
what it accepts, said for a person (docs/steps.md and the help for an unknown sentence read
``accepts``). No behave here: ``steps/_vocabulary.py`` registers ``PHRASE_TYPES`` with behave.

Natural variants are accepted by the types, not by one step per variant: "1 second" and
"2 seconds", "a question" and "three questions", "her laptop and phone" and "her laptop and
her phone", "is" and "was", "the identity store" and "the database".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

import parse

from .connection import deliberately_malformed
from .instances import ADDRESSES, UNFINISHED_HANDSHAKES
from .start_up import START_SECRETS

# -- the vocabulary -------------------------------------------------------------------

# The device words of the features -> the contract's device types.
DEVICE_TYPES = {
    "laptop": "laptop_browser",
    "phone": "mobile_browser",
    "desktop app": "desktop_app",
    "tablet": "tablet_browser",
}

NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
ONCE = {"once": 1, "twice": 2}

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

# Why a tool may be refused -> the reason the contract's permission_denied names.
TOOL_REFUSALS = {"plan": "plan", "role": "role"}

# How a feature spells an address again -> how the harness writes it.
SPELLINGS = {"exactly as she wrote it": str, "exactly as he wrote it": str, "exactly as they wrote it": str,
             "in capital letters": str.upper, "in small letters": str.lower}

THREAD_ACTIONS = {"read": "thread_read", "write to": "thread_post", "subscribe to": "thread_subscribe"}

# The business's synonyms for the one store of accounts and sessions.
IDENTITY_STORE = ("the identity store", "the database", "the user database", "the account database")

ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4}

MODES = ("development", "production")

MALFORMED_MESSAGES = (
    "text that is not JSON", "a JSON list", "a binary frame", 'a legacy "subscribe" message',
    'a message of the unknown type "dance"', "a question without any text",
)
JSON_RPC_REQUESTS = (
    "text that is not JSON", "a request without a method", "an empty batch",
    'a call of the method "weather/today"', "a tool call without a tool name",
)


def close_code(reason: str) -> int:
    try:
        return CLOSE_REASONS[reason]
    except KeyError:
        raise ValueError(f"unknown disconnect reason {reason!r}; the features know {', '.join(CLOSE_REASONS)}") from None


def device_type(device: str) -> str:
    try:
        return DEVICE_TYPES[device]
    except KeyError:
        raise ValueError(f"unknown device {device!r}: the features know {_listed(DEVICE_TYPES)}") from None


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
        return deliberately_malformed(frames[phrase])  # exempt from the frame check: bad on purpose
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
        return deliberately_malformed(frames[phrase])  # exempt from the frame check: bad on purpose
    except KeyError:
        raise ValueError(f"unknown kind of request {phrase!r}; the features know {', '.join(frames)}") from None


# -- what a blank turns into -----------------------------------------------------------

@dataclass(frozen=True)
class Pronoun:
    """Whose thing a sentence names: "her", "his", "their" (the subject's), or "Bob's" (someone's)."""

    owner: str | None  # a name, or None for a pronoun

    def check_is(self, subject: str, what: str) -> None:
        """Refuse, in plain words, a sentence that gives the subject someone else's ``what``."""
        if self.owner is not None and self.owner != subject:
            raise ValueError(f"{subject} cannot use {self.owner}'s {what}; say \"{subject} ... her {what}\" "
                             f"or let {self.owner} act")


# -- phrase types ----------------------------------------------------------------------

def _alternatives(phrases) -> str:
    return "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))


def _listed(words) -> str:
    words = list(words)
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


_NAME = r"[A-Z][a-z]+"
_SEPARATOR = r"(?:, and |, | and )"
_OWNER_WORD = r"(?:her|his|their|a|an|the)"
_DEVICE_NAME = "(?:" + _alternatives(DEVICE_TYPES) + ")"
_DEVICE = rf"(?:{_OWNER_WORD} )?{_DEVICE_NAME}"
# Digits (a thousands separator allowed: "1,000"), or a word up to twelve.
_COUNT = r"(?:\d{1,3}(?:,\d{3})+|\d+|" + _alternatives(NUMBER_WORDS) + ")"


def _split(text: str) -> list[str]:
    return [part for part in re.split(_SEPARATOR, text.strip()) if part]


def _device_word(text: str) -> str:
    first, _, rest = text.partition(" ")
    return rest if rest and re.fullmatch(_OWNER_WORD, first) else text


def number(text: str) -> int:
    """``3``, ``1,000``, ``three``, ``a``: the count a feature wrote."""
    text = text.strip().lower().replace(",", "")
    return int(text) if text.isdigit() else NUMBER_WORDS[text]


def _phrase_type(pattern: str, accepts: str, examples: str) -> Callable:
    """A parse type with what it accepts said for a person (read by docs/steps.md and the help)."""

    def decorate(convert: Callable) -> Callable:
        typed = parse.with_pattern(pattern)(convert)
        typed.accepts = accepts
        typed.examples = examples
        return typed

    return decorate


def counted(singular: str, plural: str | None = None, *, prefix: str = "") -> Callable:
    """A phrase type for "<count> <noun>": digits or words up to twelve, singular or plural."""
    plural = plural or singular + "s"
    nouns = f"(?:{re.escape(plural)}|{re.escape(singular)})"
    lead = re.escape(prefix) + " " if prefix else ""
    pattern = rf"{_COUNT} {lead}{nouns}"
    accepts = f"a number (digits, or a/one to twelve) and '{lead}{singular}' or '{lead}{plural}'"
    if singular == "time":
        pattern, accepts = rf"{pattern}|once|twice", accepts + ", or once, twice"

    @_phrase_type(pattern, accepts, f"1 {lead}{singular}, 3 {lead}{plural}, three {lead}{plural}")
    def convert(text: str) -> int:
        return ONCE.get(text) or number(text.split(" ", 1)[0])

    return convert


@_phrase_type(_NAME, "a person's first name, with a capital letter", "Alice, Bob")
def parse_name(text: str) -> str:
    return text


@_phrase_type(f"{_NAME}(?:{_SEPARATOR}{_NAME})*", "first names, separated by commas and 'and'",
              "Alice, Bob and Carol")
def parse_names(text: str) -> list[str]:
    return _split(text)


@_phrase_type(rf"(?:her|his|their|{_NAME}'s)", "her, his, their, or a name with 's", "her, his, Alice's")
def parse_pronoun(text: str) -> Pronoun:
    return Pronoun(None if text in ("her", "his", "their") else text[:-2])


@_phrase_type(_DEVICE, f"a device: {_listed(DEVICE_TYPES)}, with or without her/his/their/a",
              "her laptop, his phone, a tablet")
def parse_device(text: str) -> str:
    return _device_word(text)


@_phrase_type(f"{_DEVICE}(?:{_SEPARATOR}{_DEVICE})*",
              f"one or more devices ({_listed(DEVICE_TYPES)}), with or without repeating her/his/their",
              "her laptop and phone, her laptop and her phone")
def parse_devices(text: str) -> list[str]:
    return [_device_word(part) for part in _split(text)]


@_phrase_type(_DEVICE_NAME, f"a device: {_listed(DEVICE_TYPES)}", "laptop, desktop app")
def parse_device_name(text: str) -> str:
    return text


@_phrase_type(f"{_DEVICE_NAME}(?:{_SEPARATOR}(?:{_OWNER_WORD} )?{_DEVICE_NAME})*",
              f"one or more devices: {_listed(DEVICE_TYPES)}", "phone, tablet and desktop app")
def parse_device_names(text: str) -> list[str]:
    return [_device_word(part) for part in _split(text)]


@_phrase_type(_COUNT, "a number: digits, or a/one to twelve", "3, three, a")
def parse_count(text: str) -> int:
    return number(text)


@_phrase_type(_alternatives(TOKEN_PHRASES), f"a kind of token: {_listed(TOKEN_PHRASES)}", "an expired token")
def parse_token(text: str) -> str | None:
    return TOKEN_PHRASES[text]


@_phrase_type(r"\d{3}(?: or \d{3})*", "an HTTP status, or several joined by 'or'", "401, 401 or 403")
def parse_statuses(text: str) -> set[int]:
    return {int(code) for code in text.split(" or ")}


@_phrase_type(r"[a-z_]+", "an error code of the contract, in lower case with underscores", "rate_limited")
def parse_code(text: str) -> str:
    return text


@_phrase_type(r'[^"]+', "any text without a double quote", "What is my balance?")
def parse_quoted(text: str) -> str:
    """Text between double quotes, never spanning a quote (so steps cannot swallow each other)."""
    return text


@_phrase_type(_alternatives(MALFORMED_MESSAGES), f"a kind of bad message: {_listed(MALFORMED_MESSAGES)}",
              "text that is not JSON")
def parse_malformed(text: str) -> str:
    return text


@_phrase_type(_alternatives(JSON_RPC_REQUESTS), f"a kind of JSON-RPC request: {_listed(JSON_RPC_REQUESTS)}",
              "an empty batch")
def parse_rpc_request(text: str) -> str:
    return text


@_phrase_type(_alternatives(CLOSE_REASONS), f"why a socket is closed: {_listed(CLOSE_REASONS)}",
              "connection limit")
def parse_reason(text: str) -> int:
    return CLOSE_REASONS[text]


@_phrase_type(_alternatives(ADDRESSES), f"an address of the service: {_listed(ADDRESSES)}", "the tools address")
def parse_address(text: str) -> str:
    return ADDRESSES[text]


@_phrase_type(_alternatives(CARRIER_METHODS), f"where the token travels: {_listed(CARRIER_METHODS)}",
              "encoded subprotocol")
def parse_carrier(text: str) -> str:
    return text


@_phrase_type(r"[A-Z][a-z]+", "a plan the service publishes (Trial, Free, Pro, Enterprise by default)", "Pro")
def parse_plan(text: str) -> str:
    """Checked against the plans the target publishes, by the step (see ``Cast.plan``)."""
    return text.lower()


@_phrase_type(r"(?:an? )?[a-z]+", "a role the service publishes (member or admin by default), with or without a/an",
              "an admin")
def parse_role(text: str) -> str:
    return text.split(" ")[-1]


@_phrase_type(r"(?:the )?[a-z]+", "an agent the service publishes (assistant, researcher, planner by default)",
              "the researcher")
def parse_agent(text: str) -> str:
    return text.split(" ")[-1]


@_phrase_type(rf"(?:the )?[a-z]+(?:{_SEPARATOR}(?:the )?[a-z]+)*",
              "agents the service publishes, separated by commas and 'and'", "the assistant, the researcher and the planner")
def parse_agents(text: str) -> list[str]:
    return [part.split(" ")[-1] for part in _split(text)]


@_phrase_type(_alternatives(TOOL_REFUSALS), f"why a tool is refused: {_listed(TOOL_REFUSALS)}", "plan")
def parse_tool_refusal(text: str) -> str:
    return TOOL_REFUSALS[text]


@_phrase_type(_alternatives(SPELLINGS), f"how the address is written again: {_listed(SPELLINGS)}",
              "in capital letters")
def parse_spelling(text: str) -> Callable[[str], str]:
    return SPELLINGS[text]


@_phrase_type(_alternatives(THREAD_ACTIONS), f"what is done with a thread: {_listed(THREAD_ACTIONS)}", "read")
def parse_thread_action(text: str) -> str:
    return text


@_phrase_type(_alternatives(IDENTITY_STORE), f"the store of accounts and sessions: {_listed(IDENTITY_STORE)}",
              "the identity store, the database")
def parse_identity_store(text: str) -> str:
    return "identity store"


@_phrase_type(rf"the (?:{_alternatives(ORDINALS)}) instance|instance \d+",
              "the first, second, third or fourth instance, or instance 2", "the second instance")
def parse_instance(text: str) -> int:
    """The instance's position, counted from 1 (checked against the scenario's instances by the step)."""
    word = text.split(" ")[1]
    return ORDINALS[word] if word in ORDINALS else int(word)


@_phrase_type(_alternatives(MODES), f"a mode: {_listed(MODES)}", "production")
def parse_mode(text: str) -> str:
    return text


@_phrase_type(_alternatives(UNFINISHED_HANDSHAKES), f"how a client stalls: {_listed(UNFINISHED_HANDSHAKES)}",
              "sends nothing")
def parse_stall(text: str) -> str:
    return text


@_phrase_type(r"is|are|was|were|has been|have been|gets|get|got", "is, are, was, were, has been, have been, get(s) or got",
              "is, was")
def parse_tense(text: str) -> str:
    return text


@_phrase_type(r"receives|received|gets|got", "receives, received, gets or got", "receives")
def parse_receives(text: str) -> str:
    return text


@_phrase_type(rf"{_COUNT} (?:seconds|second|minutes|minute)", "a number (digits, or a/one to twelve) and "
              "'second(s)' or 'minute(s)'", "2 seconds, a minute, 90 seconds")
def parse_period(text: str) -> float:
    """How long something takes, in seconds."""
    count, unit = text.rsplit(" ", 1)
    return float(number(count) * (60 if unit.startswith("minute") else 1))


@dataclass(frozen=True)
class Share:
    """"99 in 100": a part of a whole, as a product owner writes a percentile."""

    part: int
    whole: int

    def __str__(self) -> str:
        return f"{self.part} in {self.whole}"


@_phrase_type(r"\d+ in \d+", "a share of a whole: '<part> in <whole>', the part at most the whole",
              "99 in 100, 19 in 20")
def parse_share(text: str) -> Share:
    part, whole = (int(value) for value in text.split(" in "))
    return Share(part, whole)  # a part beyond its whole is refused by the step, in words


@_phrase_type(r"she|he|they", "she, he or they", "she")
def parse_subject_pronoun(text: str) -> str:
    return text


@_phrase_type(r"stays|stay|remains|remain|are still|is still", "stay(s), remain(s), is/are still", "stay")
def parse_stay(text: str) -> str:
    return text


@_phrase_type(r"herself|himself|themselves|themself", "herself, himself or themselves", "herself")
def parse_herself(text: str) -> str:
    return text


@_phrase_type(_alternatives(START_SECRETS), f"a signing secret to start with: {_listed(START_SECRETS)}",
              "a signing secret of 31 bytes")
def parse_start_secret(text: str) -> str:
    return START_SECRETS[text]()


@_phrase_type(r"signs|logs", "signs or logs", "signs")
def parse_signs(text: str) -> str:
    return text


# The operations of the contract by the names its documents give them (support/operations.py),
# and what of someone's a replayed request names (support/replay.py).
from .operations import Inventory as _Inventory  # noqa: E402 - the vocabulary of ISO-08

OPERATIONS = tuple(_Inventory.load().ids())
REPLAYED_THINGS = ("thread kept to the laptop", "thread for all devices", "user id", "laptop's token")


@_phrase_type(_alternatives(OPERATIONS), "an operation of the contract, as docs/asyncapi.yaml and docs/openapi.yaml "
              "name it (threadRead, rpcToolsCall, refresh ...)", "threadList, refresh")
def parse_operation(text: str) -> str:
    return text


@_phrase_type(_alternatives(REPLAYED_THINGS), f"what a replayed request names: {_listed(REPLAYED_THINGS)}",
              "thread kept to the laptop")
def parse_replayed(text: str) -> str:
    return text


# The attack catalogue's names (support/attacks.py, support/message_abuse.py, support/raw_frames.py).
from .attacks import FORGED_TOKENS, HANDSHAKE_SHAPES, ORIGINS  # noqa: E402 - the vocabulary of AUTH-10/11, LIM-03
from .message_abuse import MESSAGE_ABUSES, ORDINARY_ANSWERS  # noqa: E402 - the vocabulary of LIM-05
from .raw_frames import BREACHES  # noqa: E402 - the vocabulary of LIM-06


@_phrase_type(_alternatives(FORGED_TOKENS), f"a forged token of the catalogue ({len(FORGED_TOKENS)} kinds, "
              "support/attacks.py FORGED_TOKENS)", 'a token that names the algorithm "none"')
def parse_forged_token(text: str) -> str:
    return text


@_phrase_type(_alternatives(HANDSHAKE_SHAPES), f"a handshake of an odd shape ({len(HANDSHAKE_SHAPES)} kinds, "
              "support/attacks.py HANDSHAKE_SHAPES)", "a second credential for someone else")
def parse_handshake_shape(text: str) -> str:
    return text


@_phrase_type(_alternatives(ORIGINS), f"a look-alike of the product's own origin: {_listed(ORIGINS)}",
              "a suffix look-alike")
def parse_look_alike(text: str) -> str:
    return text


@_phrase_type(_alternatives(MESSAGE_ABUSES), f"a message that abuses the parser: {_listed(MESSAGE_ABUSES)}",
              "3,000 nested arrays")
def parse_abuse(text: str) -> str:
    return text


@_phrase_type(rf"{_alternatives(ORDINARY_ANSWERS)}|[a-z_]+",
              f"an error code of the contract (invalid_json), or {_listed(ORDINARY_ANSWERS)}", "invalid_json, a pong")
def parse_abuse_answer(text: str) -> str:
    return text


@_phrase_type(_alternatives(BREACHES), f"a frame sequence of the protocol catalogue ({len(BREACHES)} cases, "
              "support/raw_frames.py BREACHES)", "a ping with 126 bytes of payload")
def parse_protocol_case(text: str) -> str:
    return text


@_phrase_type(r"\d{1,2}\.x", "an Autobahn|TestSuite case group, like 5.x", "2.x, 5.x")
def parse_autobahn(text: str) -> str:
    return text


@_phrase_type(r"\d{4}", "a WebSocket close code, four digits", "1002")
def parse_close_code(text: str) -> int:
    return int(text)


# Every phrase type a step sentence may use, by the name it has in braces.
PHRASE_TYPES: dict[str, Callable] = {
    "ForgedToken": parse_forged_token, "HandshakeShape": parse_handshake_shape, "LookAlike": parse_look_alike,
    "Abuse": parse_abuse, "AbuseAnswer": parse_abuse_answer, "ProtocolCase": parse_protocol_case,
    "Autobahn": parse_autobahn, "CloseCode": parse_close_code,
    "ContractOperation": parse_operation, "Replayed": parse_replayed,
    "Name": parse_name, "Names": parse_names, "Pronoun": parse_pronoun,
    "Device": parse_device, "Devices": parse_devices, "DeviceName": parse_device_name,
    "DeviceNames": parse_device_names, "Count": parse_count, "Token": parse_token, "Statuses": parse_statuses,
    "Code": parse_code, "Quoted": parse_quoted, "Malformed": parse_malformed, "RpcRequest": parse_rpc_request,
    "Reason": parse_reason, "Address": parse_address, "Carrier": parse_carrier, "Plan": parse_plan,
    "Role": parse_role, "Agent": parse_agent, "Agents": parse_agents, "ToolRefusal": parse_tool_refusal, "Spelling": parse_spelling,
    "ThreadAction": parse_thread_action, "IdentityStore": parse_identity_store, "Instance": parse_instance,
    "Mode": parse_mode, "Stall": parse_stall, "Tense": parse_tense, "Receives": parse_receives,
    "She": parse_subject_pronoun, "Herself": parse_herself, "StartSecret": parse_start_secret, "Stay": parse_stay, "Signs": parse_signs,
    "Period": parse_period, "Share": parse_share,
    "Seconds": counted("second"), "Minutes": counted("minute"), "Messages": counted("message"),
    "Questions": counted("question"), "PrivateQuestions": counted("question", prefix="private"),
    "Tabs": counted("tab"), "Times": counted("time"), "People": counted("person", "people"),
    "Connections": counted("connection"), "Handshakes": counted("handshake"), "Calls": counted("call"),
    "Notifications": counted("notification"), "Runs": counted("run"), "Kilobytes": counted("KB", "KB"),
    "Megabytes": counted("MB", "MB"),
}

# The words of the outage and capacity features (RES-01, RES-02, RES-05).
from .outage_phrases import PHRASE_TYPES as _OUTAGE_PHRASE_TYPES  # noqa: E402  (it imports nothing of this module)

PHRASE_TYPES.update(_OUTAGE_PHRASE_TYPES)
