"""Keeps tokens and secrets out of transcripts, reports and error messages."""

from __future__ import annotations

import base64
import json
import re
import threading

# A JWT in compact form, and the same base64url-encoded once more (the subprotocol carrier).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_ENCODED_JWT = re.compile(r"ZXlK[A-Za-z0-9_-]{16,}")


def jwt_claims_unverified(token: str) -> dict | None:
    """The payload of a compact JWT without checking its signature, or None if unreadable."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None


def describe_token(token: str) -> str:
    """A printable stand-in for a token: its identifying claims, never the token itself."""
    claims = jwt_claims_unverified(token) or {}
    shown = ", ".join(f"{k}={claims[k]}" for k in ("sub", "sid", "exp") if k in claims)
    return f"<token {shown} redacted>" if shown else "<token redacted>"


class Redactor:
    """Replaces every registered secret, and anything shaped like a token, in text."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._longest_first: list[tuple[str, str]] | None = []  # None: sort again before use
        self._lock = threading.Lock()

    def register(self, secret: str | None, label: str = "secret") -> None:
        if secret and len(secret) >= 6:
            with self._lock:
                self._secrets[secret] = f"<{label} redacted>"
                self._longest_first = None

    def redact(self, text: str) -> str:
        with self._lock:
            # Sorted once per change, not per call: a run registers thousands of tokens.
            if self._longest_first is None:
                self._longest_first = sorted(self._secrets.items(), key=lambda item: -len(item[0]))
            secrets = self._longest_first
        for secret, placeholder in secrets:
            if secret in text:
                text = text.replace(secret, placeholder)
        text = _JWT.sub(lambda m: describe_token(m.group(0)), text)
        return _ENCODED_JWT.sub("<encoded token redacted>", text)
