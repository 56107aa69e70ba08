"""The leak detector: sees every frame on every socket and knows who owns what.

Private data a scenario sends carries a marker owned by one user (and, for agent runs, one
session). Identities (user ids, session ids, e-mail addresses) are owned by their user. A
frame that reaches a socket of anyone else while carrying such a value is a violation: the
scenario fails, naming the owner, the receiver and the frame.

It has to keep up with thousands of sockets, so its cost per frame does not grow with the
number of people:

- A marker says whom it belongs to. ``pd-`` and 80 base32 characters: a version and scope
  byte, the owner's user and session (the 16 bytes of the UUID, or a keyed digest of an id
  of another shape), a nonce, and an HMAC of all that under the run's key. Any detector that
  holds the key decides from the marker alone whether a socket may see it, with no shared
  registry (a Locust worker, another process of the run); without the key nobody, a target
  least of all, can make one up. The key is per run (``LEAK_MARKER_KEY``, hex, gives every
  process of a distributed run the same one).
- Identities are found by their shape (UUID, e-mail address) and looked up in a dictionary.
- One fixed pattern finds the candidates of all three kinds in a frame; nothing is rebuilt
  when a value is added.

A marker-shaped string whose MAC does not verify is nobody's data: it is no violation (a
target cannot fail a scenario by echoing something that looks like a marker, nor hide a leak
with one). It is counted in ``forged_markers`` so a report can show it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

USER = "user"        # only the owning user may see it, on any of their devices
SESSION = "session"  # only the owning session (device) may see it

MARKER_PREFIX = "pd-"
_MARKER_BYTES = 50                  # 1 header + 16 user + 16 session + 7 nonce + 10 MAC
_MARKER_CHARS = _MARKER_BYTES * 8 // 5  # base32, no padding: 80
_MAC_BYTES = 10
_VERSION = 0x10
_SESSION_SCOPED = 0x01
_USER_DIGEST = 0x02     # the user id is not a UUID: its 16 bytes are a keyed digest
_SESSION_DIGEST = 0x04  # likewise for the session id
_NO_SESSION = 0x08      # user-scoped: the session bytes are zero

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_EMAIL = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
# The one pattern every frame goes through. Its three kinds of candidate are looked up in
# dictionaries; its text never changes, whatever is owned.
CANDIDATES = re.compile(rf"(?P<marker>{MARKER_PREFIX}[a-z2-7]{{{_MARKER_CHARS}}})|(?P<uuid>{_UUID})|(?P<email>{_EMAIL})")
_CANONICAL_UUID = re.compile(_UUID)
# Owned values of no known shape (an id a target makes up its own way) are looked up as
# whole tokens of this shape; the pattern runs only while such a value is owned.
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def _run_key() -> bytes:
    configured = os.environ.get("LEAK_MARKER_KEY")
    if configured:
        try:
            key = bytes.fromhex(configured)
        except ValueError:
            raise ValueError("LEAK_MARKER_KEY must be hex (e.g. the output of "
                             "`python -c 'import secrets; print(secrets.token_hex(32))'`)") from None
        if len(key) < 16:
            raise ValueError(f"LEAK_MARKER_KEY has {len(key)} bytes; it needs at least 16")
        return key
    return secrets.token_bytes(32)


RUN_KEY = _run_key()


@dataclass(frozen=True)
class Party:
    """A user, or one user's device: who owns a socket or a piece of data."""

    user_name: str
    user_id: str
    session_id: str | None = None
    device: str | None = None

    def __str__(self) -> str:
        return f"{self.user_name}'s {self.device}" if self.device else self.user_name


@dataclass(frozen=True)
class _Owned:
    owner: Party
    scope: str
    what: str


@dataclass(frozen=True)
class Violation:
    """One frame that reached a socket it must never reach."""

    receiver: Party
    owner: Party
    what: str
    frame: str
    at: float = field(default_factory=time.time)

    def __str__(self) -> str:
        excerpt = self.frame if len(self.frame) <= 600 else self.frame[:600] + "..."
        return (f"isolation broken: {self.receiver} received {self.owner}'s {self.what}; "
                f"frame: {excerpt}")


class IsolationViolation(AssertionError):
    """Raised when any socket saw another party's data."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        lines = [str(v) for v in violations[:5]]
        if len(violations) > 5:
            lines.append(f"... and {len(violations) - 5} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class MarkerOwner:
    """Whom a verified marker belongs to, as the marker itself says."""

    user: bytes             # 16 bytes: the UUID, or a keyed digest of another id
    session: bytes | None   # None for user-scoped data
    user_id: str | None     # the id as text when it is a UUID
    session_id: str | None

    def party(self) -> Party:
        user = self.user_id or "an unknown user"
        if self.session is None:
            return Party(f"user {user}", user)
        return Party(f"user {user}", user, self.session_id, f"session {self.session_id or 'unknown'}")


class MarkerCodec:
    """Makes and reads self-describing markers under one key."""

    def __init__(self, key: bytes):
        self._key = key
        self._ids: dict[str, tuple[bytes, bool]] = {}

    def id_bytes(self, value: str) -> tuple[bytes, bool]:
        """The 16 bytes an id is carried as in a marker, and whether they are a digest."""
        known = self._ids.get(value)
        if known is None:
            if _CANONICAL_UUID.fullmatch(value):
                known = (uuid.UUID(value).bytes, False)
            else:
                known = (hmac.new(self._key, b"id\0" + value.encode(), hashlib.sha256).digest()[:16], True)
            if len(self._ids) < 100_000:  # a cache, bounded
                self._ids[value] = known
        return known

    def make(self, owner: Party, scope: str) -> str:
        session_scoped = scope == SESSION and owner.session_id is not None
        header = _VERSION
        user, digest = self.id_bytes(owner.user_id)
        header |= _USER_DIGEST if digest else 0
        if session_scoped:
            session, digest = self.id_bytes(owner.session_id)
            header |= _SESSION_SCOPED | (_SESSION_DIGEST if digest else 0)
        else:
            session = bytes(16)
            header |= _NO_SESSION
        body = bytes([header]) + user + session + secrets.token_bytes(7)
        raw = body + hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        return MARKER_PREFIX + base64.b32encode(raw).decode().lower()

    def read(self, marker: str) -> MarkerOwner | None:
        """Whom ``marker`` belongs to, or None if it was not made under this key."""
        try:
            raw = base64.b32decode(marker[len(MARKER_PREFIX):].upper())
        except ValueError:
            return None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) != _MARKER_BYTES or not hmac.compare_digest(
                mac, hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]):
            return None
        header, user, session = body[0], body[1:17], body[17:33]
        user_id = None if header & _USER_DIGEST else str(uuid.UUID(bytes=user))
        if header & _NO_SESSION:
            return MarkerOwner(user, None, user_id, None)
        session_id = None if header & _SESSION_DIGEST else str(uuid.UUID(bytes=session))
        return MarkerOwner(user, session, user_id, session_id)


class LeakDetector:
    """What is owned by whom, and the check every received frame goes through.

    Safe to share between threads: values are added under a lock and looked up in plain
    dictionaries (a lookup is atomic), violations are recorded under the lock.
    """

    def __init__(self, redact: Callable[[str], str] = lambda text: text, key: bytes | None = None):
        self._codec = MarkerCodec(key or RUN_KEY)
        self._markers: dict[str, _Owned] = {}  # markers this detector made: their owners by name
        self._shaped: dict[str, _Owned] = {}   # UUIDs and e-mail addresses, lower-cased
        self._tokens: dict[str, _Owned] = {}   # owned values of any other shape
        self._violations: list[Violation] = []
        self._reported = 0  # violations already raised, or acknowledged as planted
        self.forged_markers = 0
        self.frames_inspected = 0
        self._redact = redact
        self._lock = threading.Lock()

    def private_marker(self, owner: Party, scope: str = SESSION) -> str:
        """A new marker for private data that ``owner`` is about to send; it names its owner."""
        marker = self._codec.make(owner, scope)
        with self._lock:
            self._markers[marker] = _Owned(owner, scope, f"private data (marker {marker})")
        return marker

    def own(self, owner: Party, value: str, what: str, scope: str = USER) -> None:
        """Declare that ``value`` belongs to ``owner`` (a user id, a session id, an e-mail...)."""
        if not value:
            return
        owned = _Owned(owner, scope, what)
        with self._lock:
            if value.startswith(MARKER_PREFIX) and CANDIDATES.fullmatch(value):
                self._markers[value] = owned
            elif CANDIDATES.fullmatch(value):
                self._shaped[value.lower()] = owned
            else:
                self._tokens[value] = owned

    def inspect(self, receiver: Party, frame: str) -> list[Violation]:
        """Check one frame that reached ``receiver``'s socket; record and return violations."""
        self.frames_inspected += 1  # a statistic: a lost increment between threads is harmless
        found: list[Violation] = []
        seen: set[str] = set()
        for match in CANDIDATES.finditer(frame):
            value = match.group(0)
            if value in seen:
                continue
            seen.add(value)
            if match.lastgroup == "marker":
                violation = self._check_marker(receiver, value)
            else:
                item = self._shaped.get(value.lower())
                violation = item and self._check(receiver, item)
            if violation:
                found.append(violation)
        if self._tokens:
            for match in _TOKEN.finditer(frame):
                item = self._tokens.get(match.group(0))
                if item is not None and match.group(0) not in seen:
                    seen.add(match.group(0))
                    violation = self._check(receiver, item)
                    if violation:
                        found.append(violation)
        if found:
            found = [Violation(v.receiver, v.owner, v.what, self._redact(frame)) for v in found]
            with self._lock:
                self._violations.extend(found)
        return found

    def _check(self, receiver: Party, item: _Owned) -> Violation | None:
        foreign_user = item.owner.user_id != receiver.user_id
        foreign_session = (item.scope == SESSION and item.owner.session_id is not None
                           and item.owner.session_id != receiver.session_id)
        if foreign_user or foreign_session:
            return Violation(receiver, item.owner, item.what, "")
        return None

    def _check_marker(self, receiver: Party, marker: str) -> Violation | None:
        item = self._markers.get(marker)
        if item is not None:
            return self._check(receiver, item)
        # Made elsewhere (another process of the run, an earlier scenario): the marker says whose.
        owner = self._codec.read(marker)
        if owner is None:
            self.forged_markers += 1
            return None
        foreign_user = owner.user != self._codec.id_bytes(receiver.user_id)[0]
        foreign_session = (owner.session is not None and
                           (receiver.session_id is None or owner.session != self._codec.id_bytes(receiver.session_id)[0]))
        if foreign_user or foreign_session:
            return Violation(receiver, owner.party(), f"private data (marker {marker})", "")
        return None

    def owner_of(self, marker: str) -> MarkerOwner | None:
        """Whom a marker belongs to, read from the marker itself; None if it is not genuine."""
        return self._codec.read(marker)

    @property
    def violations(self) -> list[Violation]:
        with self._lock:
            return list(self._violations)

    def raise_if_violated(self) -> None:
        """Fail with every violation not yet reported; each is reported once."""
        with self._lock:
            fresh = self._violations[self._reported:]
            self._reported = len(self._violations)
        if fresh:
            raise IsolationViolation(fresh)

    def take_planted(self) -> list[Violation]:
        """Take the violations seen so far as expected (a scenario that plants a leak on purpose)."""
        with self._lock:
            fresh = self._violations[self._reported:]
            self._reported = len(self._violations)
        return fresh
