"""A WebSocket connection that records every frame, for checks and for the report."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .contract_schema import CLIENT, ENVELOPE, JSONRPC, SERVER, FrameCheck
from .leaks import LeakDetector, Party
from .redaction import describe_token

# The three ways a client may present its token (docs/contract.md, section 4).
CARRIERS = ("bearer header", "prefixed subprotocol", "encoded subprotocol")
MARKER_PROTOCOL = "jwt-auth"


class DeliberatelyMalformed(str):
    """A frame a scenario sends knowing the contract does not describe it (bad JSON, an unknown
    type, a legacy event with no translation ...): the frame check leaves it alone."""


def deliberately_malformed(frame: str | bytes) -> str | bytes:
    """``frame``, marked as sent malformed on purpose (a binary frame is never checked anyway)."""
    return DeliberatelyMalformed(frame) if isinstance(frame, str) else frame


@dataclass
class Frame:
    """One entry of a transcript: a frame sent or received, or a handshake or close event."""

    direction: str  # "sent", "received", "handshake", "closed"
    at: float       # wall-clock time
    text: str

    # A frame is read many times (every wait on its socket looks at it): parsed once, on the
    # first look. A frame's text never changes, so neither does what it parses to.

    @cached_property
    def json(self):
        """The frame as any JSON value (a JSON-RPC batch reply is a list), or None."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @cached_property
    def message(self) -> dict | None:
        """The frame as a JSON object, or None if it is not one."""
        value = self.json
        return value if isinstance(value, dict) else None

    @cached_property
    def type(self) -> str | None:
        return (self.message or {}).get("type")

    @cached_property
    def id(self) -> Any:
        return (self.message or {}).get("id")


class HandshakeRefused(Exception):
    """The target answered the upgrade request with an HTTP refusal."""

    def __init__(self, status: int, body: str):
        super().__init__(f"handshake refused with HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


def handshake_for(carrier: str | None, token: str | None) -> dict:
    """The request headers and offered subprotocols that carry ``token`` as ``carrier`` says."""
    if carrier is None or token is None:
        return {}
    if carrier == "bearer header":
        return {"additional_headers": {"Authorization": f"Bearer {token}"}}
    if carrier == "prefixed subprotocol":
        return {"subprotocols": [MARKER_PROTOCOL, f"jwt.{token}"]}
    if carrier == "encoded subprotocol":
        encoded = base64.urlsafe_b64encode(token.encode()).rstrip(b"=").decode()
        return {"subprotocols": [MARKER_PROTOCOL, encoded]}
    raise ValueError(f"unknown token carrier {carrier!r}; expected one of {', '.join(CARRIERS)}")


class RecordedConnection:
    """An open socket of one party, read continuously by a background task.

    Every received frame is timestamped, appended to the transcript and shown to the leak
    detector as it arrives, whether or not a step is waiting for it. Every frame it sends and
    receives also goes through the scenario's check against the contract's message schemas
    (``frame_check``), except those sent malformed on purpose.
    """

    _ids = itertools.count(1)
    # The check of the scenario being run (one runs at a time); the harness sets it when a
    # scenario starts, and each connection keeps the one it was opened in. None: no check.
    frame_check: FrameCheck | None = None

    def __init__(self, owner: Party, detector: LeakDetector, speaks_envelope: bool = True):
        self.owner = owner
        # False for the JSON-RPC tools socket: it carries no fan-out events, and has no fence.
        self.speaks_envelope = speaks_envelope
        self.transcript: list[Frame] = []
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._detector = detector
        self._socket = None
        self._reader: asyncio.Task | None = None
        self._changed = asyncio.Condition()
        self._label = str(owner).lower().replace("'s ", "-").replace(" ", "-")
        self._frame_check = RecordedConnection.frame_check
        self._kind = ENVELOPE if speaks_envelope else JSONRPC
        self._endpoint = "the socket"
        # A tunnel ahead (see lose_after): the frame after which nothing more is received.
        self._lost_after: Callable[[Frame], bool] | None = None
        self._lost: asyncio.Task | None = None

    # -- opening and closing -------------------------------------------------------------

    async def open(self, url: str, *, carrier: str | None, token: str | None, timeout: float,
                   origin: str | None = None, headers: dict | None = None) -> "RecordedConnection":
        """Perform the handshake; raise HandshakeRefused if the target refuses it."""
        shown = describe_token(token) if token else "no token"
        self._endpoint = "/" + url.split("://", 1)[-1].partition("/")[2].partition("?")[0]
        extra = "".join(f" {name}: {value}" for name, value in (headers or {}).items())
        self._record("handshake", f"GET {url} carrier={carrier or 'none'} {shown} origin={origin}{extra}")
        options = handshake_for(carrier, token)
        options["additional_headers"] = {**options.get("additional_headers", {}), **(headers or {})}
        try:
            self._socket = await connect(
                url, open_timeout=timeout, ping_interval=None, max_size=None, origin=origin, **options)
        except InvalidStatus as refused:
            response = refused.response
            body = response.body.decode("utf-8", "replace") if response.body else ""
            self._record("handshake", f"refused: HTTP {response.status_code} {body}")
            raise HandshakeRefused(response.status_code, body) from None
        self.subprotocol = self._socket.subprotocol
        self._record("handshake", f"accepted: subprotocol={self.subprotocol}")
        self._reader = asyncio.get_running_loop().create_task(self._read(), name=f"read {self.owner}")
        return self

    async def close(self) -> None:
        if self._socket is not None and self.close_code is None:
            await self._socket.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    def lose_after(self, matches: Callable[[Frame], bool]) -> None:
        """Lose the connection right after the first received frame that ``matches``: nothing
        after it is received, and the socket is closed."""
        self._lost_after = matches

    @property
    def is_open(self) -> bool:
        return self._socket is not None and self.close_code is None

    async def _read(self) -> None:
        try:
            async for message in self._socket:
                if self._lost is not None:
                    continue  # in the tunnel: never received
                if self._frame_check is not None:
                    self._frame_check.inspect(str(self.owner), self._endpoint, self._kind, SERVER, message)
                if isinstance(message, bytes):
                    message = "<binary frame, %d bytes>" % len(message)
                self._record("received", message)
                self._detector.inspect(self.owner, message)
                async with self._changed:
                    self._changed.notify_all()
                if self._lost_after is not None and self._lost_after(self.transcript[-1]):
                    # As in a tunnel: nothing more arrives. The link is closed behind it (after
                    # what the client already sent, so the service still reads all of that).
                    self._lost = asyncio.get_running_loop().create_task(self._socket.close())
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self._socket.close_code or 1006
            self.close_reason = self._socket.close_reason or ""
            self._record("closed", f"code={self.close_code} reason={self.close_reason!r}")
            async with self._changed:
                self._changed.notify_all()

    # -- talking -----------------------------------------------------------------------

    def next_id(self, purpose: str) -> str:
        return f"{self._label}-{purpose}-{next(self._ids)}"

    async def send(self, message: dict | list | str | bytes, *, as_text: bool = False,
                   malformed: bool = False) -> int:
        """Send a frame (a dict or list is sent as JSON); return its transcript index.

        ``as_text`` sends bytes as a text frame without checking them (to send invalid UTF-8).
        ``malformed`` (or a ``DeliberatelyMalformed`` frame) says the frame is meant to be
        outside the contract, so the frame check does not hold it against the scenario.
        """
        if isinstance(message, (dict, list)):
            message = json.dumps(message)
        if (self._frame_check is not None and isinstance(message, str) and not malformed
                and not isinstance(message, DeliberatelyMalformed)):
            value = _json_frame(message, self._kind)
            if value is not None:
                self._frame_check.inspect(str(self.owner), self._endpoint, self._kind, CLIENT, value, message)
        index = len(self.transcript)
        shown = message if isinstance(message, str) else f"<{'text' if as_text else 'binary'} frame: {message!r}>"
        self._record("sent", shown)
        try:
            await self._socket.send(message, text=True if as_text else None)
        except ConnectionClosed:
            code = self._socket.close_code
            raise AssertionError(f"{self.owner} could not send: the service had closed the socket "
                                 f"(code {code})") from None
        return index

    @property
    def closed_at(self) -> float | None:
        """Wall-clock time the socket closed, or None while it is open."""
        return next((f.at for f in reversed(self.transcript) if f.direction == "closed"), None)

    async def wait_closed(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the socket to close; True if it did."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while self.close_code is None:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return False
                try:
                    async with asyncio.timeout(remaining):  # no task per wait, unlike wait_for
                        await self._changed.wait()
                except TimeoutError:
                    pass
        return True

    async def wait_for(self, matches: Callable[[Frame], bool], what: str, timeout: float,
                       since: int = 0) -> Frame:
        """The first received frame from transcript index ``since`` on that ``matches``.

        Fails with a message naming the party and what was awaited, if it does not arrive
        within ``timeout`` seconds or the socket closes first.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        looked = since  # frames before this index have been looked at already: only new ones are
        async with self._changed:
            while True:
                transcript = self.transcript
                while looked < len(transcript):
                    frame = transcript[looked]
                    looked += 1
                    if frame.direction == "received" and matches(frame):
                        return frame
                if self.close_code is not None:
                    raise AssertionError(
                        f"{self.owner} was waiting for {what}, but the socket closed "
                        f"(code {self.close_code}, {self.close_reason!r})")
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise AssertionError(f"{self.owner} did not receive {what} within {timeout:g} s")
                try:
                    async with asyncio.timeout(remaining):  # no task per wake-up, unlike wait_for
                        await self._changed.wait()
                except TimeoutError:
                    pass

    async def fence(self, timeout: float, backstop: float) -> str | None:
        """Prove the delivery path is drained: a fence through the fan-out, then a backstop.

        Every event the target published for this socket before the fence has arrived once
        the fence is back (docs/contract.md, section 6); the backstop gives anything sent
        outside that path a short, bounded chance to show up.
        """
        if not self.is_open or not self.speaks_envelope:
            return None
        fence_id = self.next_id("fence")
        since = len(self.transcript)
        await self.send({"type": "fence", "id": fence_id, "payload": {}})
        # An error answering the fence (say `unavailable`) ends the wait at once: waiting out
        # the timeout would hide the service's answer behind a timeout message.
        reply = await self.wait_for(lambda f: f.id == fence_id and f.type in ("fence", "error"),
                                    "its fence back through the event fan-out", timeout, since)
        if reply.type != "fence":
            raise AssertionError(f"{self.owner} sent a fence and was answered {reply.text[:300]}; "
                                 f"expected the fence back through the event fan-out")
        await asyncio.sleep(backstop)
        return fence_id

    async def send_call(self, method: str, params: dict | None = None) -> int:
        """Send a JSON-RPC 2.0 request; return its id."""
        call_id = next(self._ids)
        request = {"jsonrpc": "2.0", "id": call_id, "method": method}
        if params is not None:
            request["params"] = params
        await self.send(request)
        return call_id

    async def call(self, method: str, params: dict | None = None, *, timeout: float) -> dict:
        """A JSON-RPC 2.0 call and its response."""
        since = len(self.transcript)
        call_id = await self.send_call(method, params)
        frame = await self.wait_for(lambda f: isinstance(f.json, dict) and f.json.get("id") == call_id,
                                    f"the answer to {method}", timeout, since)
        return frame.json

    def received(self, since: int = 0) -> list[Frame]:
        return [f for f in self.transcript[since:] if f.direction == "received"]

    def _record(self, direction: str, text: str) -> None:
        self.transcript.append(Frame(direction, time.time(), text))

    def transcript_text(self, redact: Callable[[str], str]) -> str:
        """The transcript as the report shows it: one line per frame, tokens redacted."""
        arrows = {"sent": "->", "received": "<-", "handshake": "==", "closed": "xx"}
        lines = [f"Transcript of {self.owner} (user {self.owner.user_id}, session {self.owner.session_id})"]
        for frame in self.transcript:
            stamp = time.strftime("%H:%M:%S", time.gmtime(frame.at)) + f".{int(frame.at % 1 * 1000):03d}Z"
            lines.append(f"{stamp} {arrows[frame.direction]} {redact(frame.text)}")
        return "\n".join(lines)


def _json_frame(text: str, kind: str) -> dict | list | None:
    """The client frame as the check reads it: a JSON object (on JSON-RPC also a batch), else None.

    Anything else a client sends (text that is not JSON, a bare number) answers no message of
    the contract; only a scenario that means to sends it.
    """
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) or (kind == JSONRPC and isinstance(value, list)) else None
