"""Raw upgrade requests and raw WebSocket frames: what no well-behaved client library sends.

The attack catalogue needs handshakes a library refuses to write (two `Authorization`
headers, HTTP/1.0, no `Sec-WebSocket-Key`, bytes that are not ASCII) and frames it would
never build (reserved bits, unknown opcodes, a ping of 126 bytes, a close code of 999,
invalid UTF-8 split over fragments). This module speaks just enough of HTTP/1.1 and RFC
6455 over a plain TCP stream to send them, and records what came back. No behave here.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NO_STATUS, ABNORMAL = 1005, 1006  # RFC 6455 7.1.5: no close code received; no close frame at all


# -- upgrade requests ---------------------------------------------------------------------

def upgrade_request(url: str, headers: list[tuple[str, str | bytes]], *, http_version: str = "HTTP/1.1",
                    key: str | None = "", websocket_version: str | None = "13", target: str | None = None) -> bytes:
    """An upgrade request for ``url``: ``headers`` in order (repeats allowed), bytes as given.

    ``key`` "" means a fresh valid Sec-WebSocket-Key, None none at all; ``websocket_version``
    None leaves the version header out; ``target`` replaces the path (to add a query string).
    """
    parts = urlsplit(url)
    lines = [f"GET {target or parts.path or '/'} {http_version}".encode(), f"Host: {parts.netloc}".encode(),
             b"Upgrade: websocket", b"Connection: Upgrade"]
    if key is not None:
        lines.append(b"Sec-WebSocket-Key: " + (key or base64.b64encode(os.urandom(16)).decode()).encode())
    if websocket_version is not None:
        lines.append(b"Sec-WebSocket-Version: " + websocket_version.encode())
    for name, value in headers:
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode("latin-1")))
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclass
class UpgradeAnswer:
    """What the service answered an upgrade request: its status, headers and body."""

    status: int | None  # None: the connection ended (or the wait ran out) without an answer
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    seconds: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.status == 101

    def __str__(self) -> str:
        if self.status is None:
            return f"no answer within {self.seconds:.1f} s"
        return f"HTTP {self.status} {self.body[:200]!r}"


async def send_upgrade(url: str, request: bytes, timeout: float) -> UpgradeAnswer:
    """Send ``request`` on a new TCP connection to ``url``'s host; read the answer; hang up.

    An accepted upgrade (101) is hung up on at once: the check is that none is accepted.
    """
    parts = urlsplit(url)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        status = int(status_line.split(" ")[1])
        body = b""
        if status != 101:
            length = headers.get("content-length")
            try:
                body = await asyncio.wait_for(reader.readexactly(int(length)) if length and length.isdigit()
                                              else reader.read(64 * 1024), timeout)
            except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                pass
        return UpgradeAnswer(status, headers, body.decode("utf-8", "replace"), time.monotonic() - started)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError,
            ValueError, IndexError):
        return UpgradeAnswer(None, seconds=time.monotonic() - started)
    finally:
        writer.transport.abort()


# -- frames -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RawFrame:
    """One client frame as RFC 6455 5.2 lays it out, masked as a client must."""

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0  # the three reserved bits, RSV1 = 4, RSV2 = 2, RSV3 = 1

    def encode(self) -> bytes:
        first = (0x80 if self.fin else 0) | (self.rsv & 0x7) << 4 | self.opcode & 0x0F
        length = len(self.payload)
        if length < 126:
            head = struct.pack("!BB", first, 0x80 | length)
        elif length < 1 << 16:
            head = struct.pack("!BBH", first, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", first, 0x80 | 127, length)
        mask = os.urandom(4)
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(self.payload))


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason


def announced_length(length: int) -> bytes:
    """The head of a text frame that announces ``length`` bytes and sends none of them."""
    return struct.pack("!BBQ", 0x80 | TEXT, 0x80 | 127, length) + os.urandom(4)


@dataclass
class ServerFrame:
    opcode: int
    payload: bytes
    at: float


class RawFrameClient:
    """An authenticated socket that sends raw frames and records every frame the server sends.

    It keeps the harness's connection shape (``owner``, ``is_open``, ``fence``, ``close``,
    ``transcript_text``) so the scenario's sweep closes it and the report shows its transcript.
    """

    speaks_envelope = False  # the sweep sends it no fence: its frames are the scenario's own

    def __init__(self, owner):
        self.owner = owner
        self.frames: list[ServerFrame] = []
        self.close_code: int | None = None
        self.close_reason: bytes = b""
        self.transcript: list[tuple[str, float, str]] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self._changed = asyncio.Event()

    async def open(self, url: str, headers: list[tuple[str, str]], timeout: float) -> None:
        parts = urlsplit(url)
        self._reader, self._writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        self._note("handshake", f"GET {parts.path} (raw frame client)")
        self._writer.write(upgrade_request(url, headers))
        head = await asyncio.wait_for(self._reader.readuntil(b"\r\n\r\n"), timeout)
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        self._note("handshake", status)
        if " 101 " not in status + " ":
            self._writer.transport.abort()
            raise AssertionError(f"{self.owner}'s raw socket was refused: {status}")
        self._task = asyncio.get_running_loop().create_task(self._read(), name=f"raw frames of {self.owner}")

    async def send(self, *frames: RawFrame | bytes) -> None:
        """Send frames (or raw bytes) in one write, as a client that means it would."""
        data = b"".join(f if isinstance(f, bytes) else f.encode() for f in frames)
        for f in frames:
            self._note("sent", _shown(f))
        try:
            self._writer.write(data)
            await self._writer.drain()
        except ConnectionError:
            pass  # the service already hung up: what it said before is in the transcript

    async def _read(self) -> None:
        try:
            while True:
                head = await self._reader.readexactly(2)
                opcode, length = head[0] & 0x0F, head[1] & 0x7F
                if length == 126:
                    length = struct.unpack("!H", await self._reader.readexactly(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", await self._reader.readexactly(8))[0]
                payload = await self._reader.readexactly(length)
                self.frames.append(ServerFrame(opcode, payload, time.time()))
                self._note("received", _shown(RawFrame(opcode, payload)))
                if opcode == PING:  # the service's heartbeat, answered as any client must (RFC 6455, 5.5.2)
                    self._writer.write(RawFrame(PONG, payload).encode())
                if opcode == CLOSE:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else NO_STATUS
                    self.close_reason = payload[2:]
                    # Answer the close as RFC 6455 5.5.1 asks, then wait for the server to hang up.
                    self._writer.write(RawFrame(CLOSE, payload[:2]).encode())
                    await asyncio.wait_for(self._reader.read(), 2)
                    return
                self._changed.set()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            if self.close_code is None:
                self.close_code = ABNORMAL
            self._note("closed", f"code={self.close_code} reason={self.close_reason!r}")
            self._writer.transport.abort()
            self._changed.set()

    async def wait_closed(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def wait_for(self, matches, timeout: float) -> ServerFrame | None:
        """The first frame from the server that ``matches``, or None if the wait ends first."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = next((f for f in self.frames if matches(f)), None)
            if found is not None or self.close_code is not None:
                return found
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    @property
    def is_open(self) -> bool:
        return self._task is not None and self.close_code is None

    async def fence(self, timeout: float, backstop: float) -> None:
        return None

    async def close(self) -> None:
        if self._task is None:
            return
        if self.close_code is None:
            await self.send(RawFrame(CLOSE, close_payload(1000)))
            if not await self.wait_closed(2):
                self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def _note(self, direction: str, text: str) -> None:
        self.transcript.append((direction, time.time(), text))

    def transcript_text(self, redact) -> str:
        arrows = {"sent": "->", "received": "<-", "handshake": "==", "closed": "xx"}
        lines = [f"Transcript of {self.owner}'s raw frame client"]
        for direction, at, text in self.transcript:
            stamp = time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
            lines.append(f"{stamp} {arrows[direction]} {redact(text)}")
        return "\n".join(lines)


_OPCODES = {CONTINUATION: "continuation", TEXT: "text", BINARY: "binary", CLOSE: "close", PING: "ping", PONG: "pong"}


def _shown(frame: RawFrame | bytes) -> str:
    if isinstance(frame, bytes):
        return f"<raw bytes: {frame[:40]!r}{'...' if len(frame) > 40 else ''}>"
    kind = _OPCODES.get(frame.opcode, f"opcode {frame.opcode:#x}")
    flags = ("" if frame.fin else " (not final)") + (f" rsv={frame.rsv:03b}" if frame.rsv else "")
    shown = frame.payload[:60]
    return f"<{kind}{flags}, {len(frame.payload)} bytes: {shown!r}{'...' if len(frame.payload) > 60 else ''}>"


# -- the protocol breaches of LIM-06, each after an Autobahn|TestSuite case group -------------

@dataclass(frozen=True)
class Breach:
    """Frames a client sends, the Autobahn case group they follow, and what must come back.

    ``answers``: for a case the service must take in its stride, what it answers, in order:
    ("pong", payload) for a pong frame, ("text", words) for a text frame holding the words.
    A case with no answers is one the service must close the socket for (the code is the
    feature's to say).
    """

    autobahn: str
    frames: Callable[[int], list]  # the service's message size limit -> frames or raw bytes
    answers: tuple = ()


def _ping_message(message_id: str, padding: int = 0) -> bytes:
    pad = f',"pad":"{"p" * padding}"' if padding else ""
    return f'{{"type":"ping","id":"{message_id}","payload":{{}}{pad}}}'.encode()


def _exactly(size: int, message_id: str) -> bytes:
    bare = len(_ping_message(message_id, 1)) - 1
    return _ping_message(message_id, size - bare)


def _split(data: bytes, parts: int) -> list[RawFrame]:
    step = max(1, -(-len(data) // parts))
    chunks = [data[i:i + step] for i in range(0, len(data), step)]
    return [RawFrame(TEXT if n == 0 else CONTINUATION, chunk, fin=n == len(chunks) - 1) for n, chunk in enumerate(chunks)]


_PING = _ping_message("raw-1")
_REPLY = (("text", '"raw-1"'),)
_TEXT_PREFIX = b'{"type":"ping","id":"raw-1","payload":{"t":"'
_TEXT_SUFFIX = b'"}}'

BREACHES: dict[str, Breach] = {
    # 1.x framing
    "a text message in one frame": Breach("1.x", lambda limit: [RawFrame(TEXT, _PING)], _REPLY),
    "an empty text message": Breach("1.x", lambda limit: [RawFrame(TEXT, b"")], (("text", '"invalid_json"'),)),
    "a binary message": Breach("1.x", lambda limit: [RawFrame(BINARY, b"\x00\x01\x02")], (("text", '"binary_frame"'),)),
    # 2.x pings and pongs
    "a ping without payload": Breach("2.x", lambda limit: [RawFrame(PING)], (("pong", b""),)),
    "a ping with 125 bytes of payload": Breach("2.x", lambda limit: [RawFrame(PING, b"*" * 125)], (("pong", b"*" * 125),)),
    "ten pings in a row": Breach("2.x", lambda limit: [RawFrame(PING, b"%d" % n) for n in range(10)],
                                 tuple(("pong", b"%d" % n) for n in range(10))),
    "an unsolicited pong": Breach("2.x", lambda limit: [RawFrame(PONG, b"unasked"), RawFrame(TEXT, _PING)], _REPLY),
    "a ping with 126 bytes of payload": Breach("2.x", lambda limit: [RawFrame(PING, b"*" * 126)]),
    # 3.x reserved bits
    "a text frame with the first reserved bit set": Breach("3.x", lambda limit: [RawFrame(TEXT, _PING, rsv=4)]),
    "a text frame with the second reserved bit set": Breach("3.x", lambda limit: [RawFrame(TEXT, _PING, rsv=2)]),
    "a text frame with the third reserved bit set": Breach("3.x", lambda limit: [RawFrame(TEXT, _PING, rsv=1)]),
    "a ping with every reserved bit set": Breach("3.x", lambda limit: [RawFrame(PING, b"x", rsv=7)]),
    "a close frame with a reserved bit set": Breach("3.x", lambda limit: [RawFrame(CLOSE, close_payload(1000), rsv=4)]),
    # 4.x opcodes
    "a frame with the reserved data opcode 3": Breach("4.x", lambda limit: [RawFrame(0x3, b"x")]),
    "a frame with the reserved control opcode 11": Breach("4.x", lambda limit: [RawFrame(0xB, b"x")]),
    # 5.x fragmentation
    "a text message in two fragments": Breach("5.x", lambda limit: _split(_PING, 2), _REPLY),
    "a text message one byte per fragment": Breach("5.x", lambda limit: _split(_PING, len(_PING)), _REPLY),
    "a ping between two fragments of a message": Breach("5.x", lambda limit: [
        _split(_PING, 2)[0], RawFrame(PING, b"between"), _split(_PING, 2)[1]], (("pong", b"between"), *_REPLY)),
    "a ping split into fragments": Breach("5.x", lambda limit: [RawFrame(PING, b"pi", fin=False),
                                                                RawFrame(CONTINUATION, b"ng")]),
    "a continuation frame with nothing to continue": Breach("5.x", lambda limit: [
        RawFrame(CONTINUATION, _PING, fin=False)]),
    "a final continuation frame with nothing to continue": Breach("5.x", lambda limit: [RawFrame(CONTINUATION, _PING)]),
    "a new text message while a fragmented one is open": Breach("5.x", lambda limit: [
        RawFrame(TEXT, _PING[:10], fin=False), RawFrame(TEXT, _PING)]),
    # 6.x UTF-8
    "a character split across two fragments": Breach("6.x", lambda limit: [
        RawFrame(TEXT, _TEXT_PREFIX + "€".encode()[:1], fin=False),
        RawFrame(CONTINUATION, "€".encode()[1:] + _TEXT_SUFFIX)], _REPLY),
    "invalid UTF-8 in a text frame": Breach("6.x", lambda limit: [RawFrame(TEXT, _TEXT_PREFIX + b"\xff\xfe" + _TEXT_SUFFIX)]),
    "invalid UTF-8 in the second fragment": Breach("6.x", lambda limit: [
        RawFrame(TEXT, _TEXT_PREFIX, fin=False), RawFrame(CONTINUATION, b"\xc0\xaf" + _TEXT_SUFFIX)]),
    "an overlong encoding of a slash": Breach("6.x", lambda limit: [RawFrame(TEXT, _TEXT_PREFIX + b"\xc0\xaf" + _TEXT_SUFFIX)]),
    "a surrogate encoded in UTF-8": Breach("6.x", lambda limit: [RawFrame(TEXT, _TEXT_PREFIX + b"\xed\xa0\x80" + _TEXT_SUFFIX)]),
    "a code point beyond U+10FFFF": Breach("6.x", lambda limit: [RawFrame(TEXT, _TEXT_PREFIX + b"\xf4\x90\x80\x80" + _TEXT_SUFFIX)]),
    "a character cut short at the end of a message": Breach("6.x", lambda limit: [RawFrame(TEXT, _TEXT_PREFIX + b"\xe2\x82")]),
    # 7.x the closing handshake
    "a close with the code 1000": Breach("7.x", lambda limit: [RawFrame(CLOSE, close_payload(1000, b"bye"))]),
    "a close with the code 3000": Breach("7.x", lambda limit: [RawFrame(CLOSE, close_payload(3000))]),
    "a close followed by more frames": Breach("7.x", lambda limit: [RawFrame(CLOSE, close_payload(1000)),
                                                                    RawFrame(TEXT, _PING), RawFrame(PING, b"late")]),
    "a close with a one-byte payload": Breach("7.x", lambda limit: [RawFrame(CLOSE, b"\x03")]),
    "a close whose payload is over 125 bytes": Breach("7.x", lambda limit: [RawFrame(CLOSE, close_payload(1000, b"r" * 124))]),
    "a close with invalid UTF-8 in its reason": Breach("7.x", lambda limit: [RawFrame(CLOSE, close_payload(1000, b"\xff\xfe"))]),
    **{f"a close with the code {code}": Breach("7.x", lambda limit, code=code: [RawFrame(CLOSE, close_payload(code))])
       for code in (0, 999, 1005, 1015, 5000)},
    # 9.x limits
    "a message exactly at the size limit": Breach("9.x", lambda limit: [RawFrame(TEXT, _exactly(limit, "raw-1"))], _REPLY),
    "a message just over the size limit": Breach("9.x", lambda limit: [RawFrame(TEXT, _exactly(limit + 1, "raw-1"))]),
    "a message over the size limit in fragments": Breach("9.x", lambda limit: _split(_exactly(limit + 1024, "raw-1"), 4)),
    "a frame that announces 2 GB": Breach("9.x", lambda limit: [announced_length(2 ** 31)]),
}


def breach(case: str, autobahn: str) -> Breach:
    """The catalogued case, refused in plain words if the feature cites another Autobahn group for it."""
    try:
        found = BREACHES[case]
    except KeyError:
        raise ValueError(f"unknown protocol case {case!r}; the catalogue knows {len(BREACHES)} "
                         f"(support/raw_frames.py BREACHES)") from None
    if found.autobahn != autobahn:
        raise ValueError(f"{case!r} follows the Autobahn case group {found.autobahn}, not {autobahn}")
    return found


async def check_answers(client: RawFrameClient, case: str, answers: tuple, timeout: float) -> None:
    """Each expected answer arrived, in order, and the socket is still open afterwards."""
    position = 0
    for kind, expected in answers:
        def matches(frame: ServerFrame, kind=kind, expected=expected) -> bool:
            if kind == "pong":
                return frame.opcode == PONG and frame.payload == expected
            return frame.opcode == TEXT and expected in frame.payload.decode("utf-8", "replace")
        found = await client.wait_for(lambda f: f in client.frames[position:] and matches(f), timeout)
        if found is None:
            state = f"closed with {client.close_code}" if client.close_code else "still open"
            raise AssertionError(f"{client.owner} sent {case} and got no {kind} {expected!r} within {timeout:g} s "
                                 f"(the socket is {state})")
        position = client.frames.index(found) + 1
    if client.close_code is not None:
        raise AssertionError(f"{client.owner} sent {case}, was answered, and then the service closed the socket "
                             f"with {client.close_code}; expected it to stay open")


async def check_closed_with(client: RawFrameClient, case: str, code: int, timeout: float) -> None:
    if not await client.wait_closed(timeout):
        raise AssertionError(f"{client.owner} sent {case} and the service kept the socket open {timeout:g} s; "
                             f"expected it to close with {code}")
    if client.close_code != code:
        raise AssertionError(f"{client.owner} sent {case} and the service closed the socket with "
                             f"{client.close_code} {client.close_reason[:80]!r}; expected {code} (RFC 6455, 7.4.1)")
