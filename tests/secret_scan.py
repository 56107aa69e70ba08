"""Finds raw tokens and configured secrets in what a run wrote (results, reports, console, JSON).

Used by the secrets test and by every planted-defect run (tests/conftest.py run_spec): a
failing run's messages quote frames and handshakes, so each one is scanned, status details
of its Allure results and behave's JSON report included.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

# A JWT, or one base64url-encoded (the subprotocol carrier); the latter only where it starts a
# word, since "ZXlK" turns up by chance in the middle of any long base64 blob.
TOKEN_SHAPED = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
                          rb"|(?<![A-Za-z0-9+/_-])ZXlK[A-Za-z0-9_-]{24,}")
# The single-file report embeds its data (attachments included) base64-encoded.
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{40,}={0,2}")


def _layers(data: bytes) -> list[bytes]:
    """The bytes themselves, and every long base64 run in them decoded."""
    layers = [data]
    for match in BASE64_RUN.finditer(data):
        run = match.group(0)
        try:
            layers.append(base64.b64decode(run + b"=" * (-len(run) % 4)))
        except (binascii.Error, ValueError):
            continue
    return layers


def scan_bytes(name: str, data: bytes, secrets: list[str]) -> list[str]:
    found = []
    for layer in _layers(data):
        found += [f"{name}: token-shaped {m.group(0)[:20]!r}..." for m in TOKEN_SHAPED.finditer(layer)]
        found += [f"{name}: contains a configured secret" for s in secrets if s and s.encode() in layer]
    return found


def scan(directory: Path, secrets: list[str]) -> list[str]:
    """Every file under ``directory``."""
    found = []
    for path in Path(directory).rglob("*"):
        if path.is_file():
            found += scan_bytes(path.name, path.read_bytes(), secrets)
    return found
