"""The identity store (contract section 13): the database calls a handshake needs, behind a circuit breaker.

A token handshake checks its session in the database, unless this instance already did and
nothing has changed the user's standing since (standing.py). When the database is out of
reach those handshakes are refused with 503, and after THRESHOLD consecutive failures the
breaker opens: for the cool-down, handshakes are refused at once, without taking a pool
connection. Then one handshake is let through (half-open); its success closes the breaker,
its failure opens it for another cool-down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

import asyncpg

from . import db
from .standing import Standing, StandingCache

log = logging.getLogger(__name__)

THRESHOLD = 3
CALL_TIMEOUT_SECONDS = 2.0
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
T = TypeVar("T")


def call_timeout(handshake_timeout_seconds: float) -> float:
    """How long one database call of a handshake may take: a second or two, and at most half
    the handshake's own deadline, so a hung database is noticed (and counted) here while the
    handshake still has time to answer 503.
    """
    return min(CALL_TIMEOUT_SECONDS, handshake_timeout_seconds / 2)


class CircuitOpen(ConnectionError):
    """The breaker is open: the database was not tried. A ConnectionError, so it is answered like any outage."""


class Breaker:
    def __init__(self, cooldown_seconds: float, threshold: int = THRESHOLD, clock: Callable[[], float] = time.monotonic):
        self._cooldown = cooldown_seconds
        self._threshold = threshold
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None  # None: closed
        self._trial = False  # the half-open handshake is under way

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._trial or self._clock() - self._opened_at >= self._cooldown:
            return HALF_OPEN
        return OPEN

    def admit(self) -> None:
        """Let a call through, or raise CircuitOpen. Past the cool-down, the first caller is the trial."""
        state = self.state
        if state == CLOSED:
            return
        if state == OPEN or self._trial:
            raise CircuitOpen("the identity store's circuit breaker is open")
        self._trial = True

    def succeeded(self) -> None:
        if self._opened_at is not None:
            log.info("the identity store answers again; circuit breaker closed")
        self._failures, self._opened_at, self._trial = 0, None, False

    def failed(self) -> None:
        self._failures += 1
        if self._trial or (self._opened_at is None and self._failures >= self._threshold):
            log.warning("the identity store failed %d times in a row; refusing handshakes for %g s without trying it",
                        self._failures, self._cooldown)
            self._opened_at, self._trial = self._clock(), False

    def abandoned(self) -> None:
        """A call ended without a verdict (cancelled): a trial's turn passes to the next caller."""
        self._trial = False


class IdentityStore:
    """Runs a query on one pool connection, within `timeout_seconds`, through the breaker."""

    def __init__(self, pool: asyncpg.Pool, breaker: Breaker, timeout_seconds: float, kept: StandingCache):
        self.pool = pool
        self.breaker = breaker
        self._timeout = timeout_seconds
        self.kept = kept

    async def standing(self, user_id: UUID, session_id: UUID) -> Standing | None:
        """The session's standing if it is live, else None: as this instance kept it, or from the
        database (then kept, under the version read first). A kept one is confirmed, or found
        stale, when the socket is counted (registry.py)."""
        kept = self.kept.kept(user_id, session_id)
        if kept is not None:
            return kept
        version, epoch = await self.kept.version(user_id)
        standing = await self.live_standing(user_id, session_id, version)
        if standing is not None:
            self.kept.keep(user_id, session_id, standing, epoch)
        return standing

    async def live_standing(self, user_id: UUID, session_id: UUID, version: str | None = None) -> Standing | None:
        """The session's standing from the database, if it is live."""
        row = await self.run(lambda conn: db.live_session(conn, user_id, session_id))
        return None if row is None else Standing(row["plan"], row["role"], version)

    async def run(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        self.breaker.admit()
        try:
            result = await self._run(query)
        except db.UNAVAILABLE:  # TimeoutError included: it is an OSError
            self.breaker.failed()
            raise
        except asyncpg.PostgresError:
            self.breaker.succeeded()  # the database answered, if only to refuse the query
            raise
        except BaseException:
            self.breaker.abandoned()
            raise
        self.breaker.succeeded()
        return result

    async def _run(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        deadline = asyncio.get_running_loop().time() + self._timeout
        async with asyncio.timeout_at(deadline):
            connection = await self.pool.acquire()
        try:
            async with asyncio.timeout_at(deadline):
                return await query(connection)
        except (TimeoutError, asyncio.CancelledError):
            # Stuck mid-query on a database that does not answer: asking it to cancel the
            # query would hang as well. Dropping the connection frees the pool's slot now.
            connection.terminate()
            raise
        finally:
            await self.pool.release(connection)
