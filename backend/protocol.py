"""uvicorn's HTTP and WebSocket protocols, with every handshake answered or closed in time.

uvicorn waits forever for the first request on a new connection: its keep-alive timeout
only starts after a response. A client that connects and sends nothing, or half a request
(slowloris), would hold its socket for good. Here a timer starts when the connection
opens, and again when the first bytes of a later request arrive, and closes the transport
unless the request is complete by then: the whole request, or for a WebSocket upgrade its
head. From the upgrade on, the endpoint's own timeout bounds the rest of the handshake.

An upgrade is refused here, before any WebSocket code sees it, when it is not HTTP/1.1
(uvicorn would rewrite an HTTP/1.0 request line as HTTP/1.1) or its head is too large.
The WebSocket protocol then answers what its own parser refuses (a request or header line
too long, too many headers), which uvicorn's never writes, and closes any handshake that
is still unanswered shortly after the endpoint's own timeout.

A connection whose first bytes are one whole, plain upgrade request (whole_upgrade) skips
h11: the WebSocket protocol parses the request anyway, and h11 would parse it first only to
write it out again, a tenth of an accepted handshake's time (PERF-02). Anything else goes
through h11 and the checks above, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger(__name__)
# What websockets itself says of a handshake. Its INFO lines ("connection open", "connection
# rejected (401 Unauthorized)") repeat uvicorn's own line for the same handshake, one more
# record written before each 101; its warnings and errors are still logged.
HANDSHAKE_LOG = logging.getLogger("uvicorn.error.websockets")
HANDSHAKE_LOG.setLevel(logging.WARNING)

# Their (the client's) h11 states while a request is still arriving.
ARRIVING = (h11.IDLE, h11.SEND_BODY)
# The head of an upgrade request (request line and headers) may take this many bytes. h11
# enforces as much only while a head is incomplete; a head that arrives whole is checked here.
MAX_UPGRADE_HEAD_BYTES = 16 * 1024
# The endpoint answers within the handshake timeout (503 at the latest); a handshake still
# unanswered this long after that is closed without an answer.
UNANSWERED_GRACE_SECONDS = 1.0


def upgrade_refusal(event: h11.Request) -> tuple[HTTPStatus, str] | None:
    """Why this upgrade request is refused before the endpoint sees it, or None."""
    if event.http_version != b"1.1":
        return HTTPStatus.BAD_REQUEST, (f"a WebSocket upgrade needs HTTP/1.1 (RFC 6455, 4.1); this request is "
                                        f"HTTP/{event.http_version.decode('ascii', 'replace')}")
    size = len(event.method) + len(event.target) + sum(len(name) + len(value) + 4 for name, value in event.headers)
    if size > MAX_UPGRADE_HEAD_BYTES:
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, (
            f"the upgrade request's head is {size} bytes; expected at most {MAX_UPGRADE_HEAD_BYTES}")
    return None


def whole_upgrade(data: bytes) -> bytes | None:
    """``data`` as h11 would pass it on (header names in small letters, values stripped), if it is
    exactly one complete WebSocket upgrade request: `GET <target> HTTP/1.1`, a head of at most
    MAX_UPGRADE_HEAD_BYTES with one Host, `Connection: upgrade` and `Upgrade: websocket`, no
    body and nothing after the head. Else None: anything else, or in doubt, goes through h11
    and the checks of DeadlineH11Protocol."""
    if len(data) > MAX_UPGRADE_HEAD_BYTES or not data.endswith(b"\r\n\r\n") or data.count(b"\r\n\r\n") != 1:
        return None
    request_line, *lines = data[:-4].split(b"\r\n")
    method, _, rest = request_line.partition(b" ")
    target, _, version = rest.partition(b" ")
    if method != b"GET" or version != b"HTTP/1.1" or not target.startswith(b"/") or not _VISIBLE.issuperset(target):
        return None
    seen: dict[bytes, bytes] = {}
    out = [request_line]
    for line in lines:
        name, colon, value = line.partition(b":")
        name, value = name.lower(), value.strip(b" \t")
        if not colon or not name or name != name.strip() or (name in seen and name in _SINGLE):
            return None
        seen[name] = value
        out.append(name + b": " + value)
    connection = [token.strip() for token in seen.get(b"connection", b"").lower().split(b",")]
    if (b"host" in seen and b"upgrade" in connection and seen.get(b"upgrade", b"").lower() == b"websocket"
            and b"content-length" not in seen and b"transfer-encoding" not in seen):
        out.append(b"\r\n")
        return b"\r\n".join(out)
    return None


# The bytes a request target may hold on the fast path: visible ASCII (anything else, h11 decides).
_VISIBLE = frozenset(range(0x21, 0x7F))
# Headers that may appear once in a request the fast path takes (twice: h11 decides).
_SINGLE = frozenset((b"host", b"connection", b"upgrade", b"content-length", b"transfer-encoding"))


class DeadlineH11Protocol(H11Protocol):
    deadline_seconds: float = 10.0  # set per server by with_deadline()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._upgraded = False
        self._first_bytes = True
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._first_bytes:
            self._first_bytes = False
            upgrade = whole_upgrade(data)
            if upgrade is not None:
                self._hand_over(upgrade)
                return
        super().data_received(data)
        if self._upgraded:
            return
        if self.conn.their_state in ARRIVING:
            self._arm()  # no-op if already armed: the deadline runs from the request's first byte
        else:
            self._disarm()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._upgraded = True
        self._disarm()
        refusal = upgrade_refusal(event)
        if refusal is not None:
            self._refuse(*refusal)
            return
        super().handle_websocket_upgrade(event)

    def _hand_over(self, data: bytes) -> None:
        """The connection's first bytes are a whole upgrade request: straight to the WebSocket
        protocol, which parses it anyway (h11 would parse it first, only to write it out again)."""
        self._upgraded = True
        self._disarm()
        self._unset_keepalive_if_required()
        self.connections.discard(self)
        protocol = self.ws_protocol_class(config=self.config, server_state=self.server_state, app_state=self.app_state)
        protocol.connection_made(self.transport)
        protocol.data_received(data)
        self.transport.set_protocol(protocol)

    def _refuse(self, status: HTTPStatus, message: str) -> None:
        """Answer the request with `status` and an error body (contract section 2), then close."""
        log.info("refusing a WebSocket upgrade with %d: %s", status, message)
        body = json.dumps({"error": status.phrase.lower().replace(" ", "_"), "message": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=status.value, headers=headers, reason=status.phrase.encode()),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.deadline_seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.debug("closing a connection whose request did not arrive within %s s", self.deadline_seconds)
            self.transport.close()


class AnsweringWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, which never leaves a handshake unanswered.

    When websockets refuses to parse the upgrade request, it prepares an answer (414 for a
    request line too long, 431 for a header line too long or too many headers) and uvicorn
    waits for an event that never comes: the answer is not written and the connection is
    held open. Here it is written, or a 400 when websockets prepared none, and the
    connection is closed.
    """

    deadline_seconds: float = 11.0  # set per server by answering_websockets()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.logger = HANDSHAKE_LOG
        self.logger = AfterTheAnswer(self.logger, self.loop)  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._unanswered = self.loop.call_later(self.deadline_seconds, self._expire)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None and not self.transport.is_closing():
            self._refuse_unparsed()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete:
            self._unanswered.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self._unanswered.cancel()
        super().connection_lost(exc)

    def _refuse_unparsed(self) -> None:
        self._unanswered.cancel()
        self.handshake_complete = self.close_sent = True
        output = b"".join(self.conn.data_to_send())
        if not output.startswith(b"HTTP/"):
            # Serialized here: websockets has already ended its side of the stream.
            output = self.conn.reject(HTTPStatus.BAD_REQUEST, "Failed to open a WebSocket connection: "
                                                              "the upgrade request is not valid HTTP.\n").serialize()
        log.info("refusing a WebSocket upgrade: %s", self.conn.handshake_exc)
        self.transport.write(output)
        self.transport.close()

    def _expire(self) -> None:
        if not self.handshake_complete and not self.transport.is_closing():
            log.warning("closing a WebSocket handshake still unanswered after %s s", self.deadline_seconds)
            self.transport.close()


class AfterTheAnswer:
    """uvicorn's logger for one socket, whose INFO lines are written after the answer.

    uvicorn writes its line for a handshake ('"WebSocket /ws" [accepted]', or the status it
    was refused with) just before it writes the answer, so every client waited for a log
    record to be formatted and written: a tenth of an accepted handshake (PERF-02). Here
    the line is written on the event loop's next turn, after what is already due then (the
    socket's welcome frame), as an HTTP server writes its access line once it has answered.
    Warnings and errors are written at once.
    """

    def __init__(self, logger: logging.Logger, loop: asyncio.AbstractEventLoop):
        self._logger, self._loop = logger, loop

    def info(self, message: str, *args: Any) -> None:
        self._loop.call_later(0, self._logger.info, message, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


def with_deadline(seconds: float) -> type[DeadlineH11Protocol]:
    """The protocol class to hand to uvicorn.Config(http=...), with its deadline."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"deadline_seconds": seconds})


def answering_websockets(handshake_seconds: float) -> type[AnsweringWebSocketProtocol]:
    """The protocol class to hand to uvicorn.Config(ws=...), for the endpoints' handshake timeout."""
    return type("AnsweringWebSocketProtocol", (AnsweringWebSocketProtocol,),
                {"deadline_seconds": handshake_seconds + UNANSWERED_GRACE_SECONDS})
