"""uvicorn's HTTP protocol with a deadline for each request (contract section 4, handshake timeout).

uvicorn waits forever for the first request on a new connection: its keep-alive timeout
only starts after a response. A client that connects and sends nothing, or half a request
(slowloris), would hold its socket for good. Here a timer starts when the connection
opens, and again when the first bytes of a later request arrive, and closes the transport
unless the request is complete by then: the whole request, or for a WebSocket upgrade its
head. From the upgrade on, the endpoint's own timeout bounds the rest of the handshake.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

# Their (the client's) h11 states while a request is still arriving.
ARRIVING = (h11.IDLE, h11.SEND_BODY)


class DeadlineH11Protocol(H11Protocol):
    deadline_seconds: float = 10.0  # set per server by with_deadline()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._upgraded = False
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
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
        super().handle_websocket_upgrade(event)

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


def with_deadline(seconds: float) -> type[DeadlineH11Protocol]:
    """The protocol class to hand to uvicorn.Config(http=...), with its deadline."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"deadline_seconds": seconds})
