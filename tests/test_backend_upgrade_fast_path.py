"""The upgrade fast path (backend/protocol.py, whole_upgrade): only a request h11 would pass on
unchanged skips h11; anything else, or anything in doubt, goes through h11 and its checks,
so the refusals of contract section 4 and AUTH-10 stay as they were."""

from __future__ import annotations

import pytest

from backend.protocol import MAX_UPGRADE_HEAD_BYTES, whole_upgrade

UPGRADE = (b"GET /ws?last_event_id=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           b"Origin: https://app.example.com\r\nAuthorization: Bearer a.b.c\r\n\r\n")


def test_a_whole_upgrade_is_handed_on_as_h11_would_write_it_out():
    handed = whole_upgrade(UPGRADE)
    assert handed is not None
    request_line, *headers = handed[:-4].split(b"\r\n")
    assert request_line == b"GET /ws?last_event_id=1 HTTP/1.1"
    assert [line.split(b":")[0] for line in headers] == [
        b"host", b"upgrade", b"connection", b"sec-websocket-key", b"sec-websocket-version", b"origin", b"authorization"]
    assert b"authorization: Bearer a.b.c" in headers, "a header's value must reach the endpoint unchanged"
    assert whole_upgrade(UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade")) is not None


@pytest.mark.parametrize("why, request_bytes", [
    ("HTTP/1.0", UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0")),
    ("not GET", UPGRADE.replace(b"GET ", b"POST ")),
    ("a target byte outside visible ASCII", UPGRADE.replace(b"/ws", b"/w\xffs")),
    ("a space in the target", UPGRADE.replace(b"/ws", b"/w s")),
    ("a target that is not a path", UPGRADE.replace(b"GET /ws", b"GET http://evil.test/ws")),
    ("the head not complete", UPGRADE[:-2]),
    ("bytes after the head", UPGRADE + b"\x81\x00"),
    ("no Host", UPGRADE.replace(b"Host: 127.0.0.1:8000\r\n", b"")),
    ("two Hosts", UPGRADE.replace(b"Host: 127.0.0.1:8000", b"Host: a\r\nHost: b")),
    ("another upgrade", UPGRADE.replace(b"Upgrade: websocket", b"Upgrade: h2c")),
    ("no Connection: upgrade", UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive")),
    ("a folded header line", UPGRADE.replace(b"Host: 127.0.0.1:8000", b"Host: 127.0.0.1:8000\r\n folded")),
    ("a line without a colon", UPGRADE.replace(b"Host: 127.0.0.1:8000", b"Host: 127.0.0.1:8000\r\nnonsense")),
    ("a space before the colon", UPGRADE.replace(b"Host: ", b"Host : ")),
    ("a body", UPGRADE.replace(b"Host:", b"Content-Length: 2\r\nHost:")),
    ("a head over the limit", UPGRADE.replace(b"Origin:", b"X-Pad: " + b"a" * MAX_UPGRADE_HEAD_BYTES + b"\r\nOrigin:")),
])
def test_anything_else_goes_through_h11(why, request_bytes):
    assert whole_upgrade(request_bytes) is None, f"{why}: taken by the fast path"
