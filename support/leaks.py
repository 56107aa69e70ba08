"""The leak detector: sees every frame on every socket and knows who owns what.

Private data a scenario sends carries a unique marker owned by one user (and, for agent
runs, one session). Identities (user ids, session ids, e-mail addresses) are owned by their
user. A frame that reaches a socket of anyone else while carrying such a value is a
violation: the scenario fails, naming the owner, the receiver and the frame.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

USER = "user"        # only the owning user may see it, on any of their devices
SESSION = "session"  # only the owning session (device) may see it


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


class LeakDetector:
    """Registry of owned values, and the check every received frame goes through."""

    def __init__(self, redact: Callable[[str], str] = lambda text: text):
        self._owned: dict[str, _Owned] = {}
        self._pattern: re.Pattern | None = None
        self._violations: list[Violation] = []
        self._reported = 0  # violations already raised, or acknowledged as planted
        self._redact = redact
        self._lock = threading.Lock()

    def private_marker(self, owner: Party, scope: str = SESSION) -> str:
        """A new unique marker for private data that ``owner`` is about to send."""
        marker = "pd-" + uuid.uuid4().hex[:16]
        self.own(owner, marker, f"private data (marker {marker})", scope)
        return marker

    def own(self, owner: Party, value: str, what: str, scope: str = USER) -> None:
        """Declare that ``value`` belongs to ``owner`` (a user id, a session id, an e-mail...)."""
        if not value:
            return
        with self._lock:
            self._owned[value] = _Owned(owner, scope, what)
            self._pattern = None

    def inspect(self, receiver: Party, frame: str) -> list[Violation]:
        """Check one frame that reached ``receiver``'s socket; record and return violations."""
        with self._lock:
            if self._pattern is None:
                alternatives = sorted(self._owned, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None
            pattern, owned = self._pattern, self._owned
        if pattern is None:
            return []
        found: list[Violation] = []
        seen: set[str] = set()
        for match in pattern.finditer(frame):
            value = match.group(0)
            if value in seen:
                continue
            seen.add(value)
            item = owned[value]
            foreign_user = item.owner.user_id != receiver.user_id
            foreign_session = (item.scope == SESSION and item.owner.session_id is not None
                               and item.owner.session_id != receiver.session_id)
            if foreign_user or foreign_session:
                found.append(Violation(receiver, item.owner, item.what, self._redact(frame)))
        if found:
            with self._lock:
                self._violations.extend(found)
        return found

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
