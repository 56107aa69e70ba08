"""The built-in agent: deterministic, it answers a chat question by quoting it.

Every run is recorded in agent_executions and reports its progress as five events
published on the asking session's channel, all carrying the chat message's id. The row
is marked completed just before the last event goes out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

import asyncpg

from . import db, fanout
from .fanout import Fanout, session_channel
from .messages import error_frame, frame
from .tokens import Identity

log = logging.getLogger(__name__)

AGENT = "assistant"
TOOL = "knowledge_lookup"
EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")

Reply = Callable[[dict[str, Any]], None]
UNAVAILABLE = db.UNAVAILABLE + fanout.UNAVAILABLE


def lookup(question: str) -> str:
    """What the knowledge_lookup tool finds; it quotes the question (also served on /ws/mcp)."""
    return f'The knowledge base holds one note on "{question}": this reference backend answers every question the same way.'


def script(run_id: UUID, question: str) -> list[tuple[str, dict[str, Any]]]:
    """The events of one run, in order. The thought, tool input and answer quote the question."""
    run = str(run_id)
    finding = lookup(question)
    return [
        ("agent_started", {"run_id": run, "agent": AGENT}),
        ("agent_thinking", {"run_id": run, "thought": f'The user asks "{question}". I will look it up in the knowledge base.'}),
        ("tool_executing", {"run_id": run, "tool": TOOL, "input": question}),
        ("tool_completed", {"run_id": run, "tool": TOOL, "output": finding}),
        ("agent_completed", {"run_id": run, "answer": f'You asked "{question}". {finding}'}),
    ]


class Agent:
    def __init__(self, pool: asyncpg.Pool, fanout: Fanout):
        self._pool = pool
        self._fanout = fanout
        self._runs: set[asyncio.Task[None]] = set()

    def start(self, identity: Identity, request_id: str, question: str, reply: Reply, turn: asyncio.Lock) -> None:
        """Answer in the background so the socket keeps reading.

        `reply` sends a frame straight to the asking socket (used only for failures);
        runs holding the same `turn` lock run one after another, in the order started.
        """
        task = asyncio.create_task(self._run(identity, request_id, question, reply, turn), name=f"agent-{request_id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def close(self) -> None:
        """Cancel unfinished runs (they are marked failed) and wait for them."""
        for task in self._runs:
            task.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)

    async def _run(self, identity: Identity, request_id: str, question: str, reply: Reply, turn: asyncio.Lock) -> None:
        async with turn:
            try:
                run_id = await db.start_execution(
                    self._pool, user_id=identity.user_id, session_id=identity.session_id,
                    request_id=request_id, agent=AGENT, tool=TOOL,
                )
            except Exception as exc:
                _log_failure(f"could not record an agent run for request {request_id!r}", exc)
                reply(error_frame("agent_failed", "the agent could not start; try again", request_id))
                return
            try:
                channel = session_channel(identity.session_id)
                *progress, (last, result) = script(run_id, question)
                for event, payload in progress:
                    await self._fanout.publish(channel, frame(event, request_id, payload))
                # Recorded before it is announced: a client holding agent_completed
                # finds the row completed.
                await db.finish_execution(self._pool, run_id, "completed")
                await self._fanout.publish(channel, frame(last, request_id, result))
            except asyncio.CancelledError:
                await self._mark_failed(run_id, "cancelled: the backend shut down during the run")
                raise
            except Exception as exc:
                _log_failure(f"agent run {run_id} failed", exc)
                await self._mark_failed(run_id, f"{type(exc).__name__}: {exc}")
                reply(error_frame("agent_failed", "the agent run failed; try again", request_id))

    async def _mark_failed(self, run_id: UUID, error: str) -> None:
        try:
            await db.finish_execution(self._pool, run_id, "failed", error)
        except Exception as exc:
            _log_failure(f"could not mark agent run {run_id} failed", exc)


def _log_failure(what: str, exc: Exception) -> None:
    # An unreachable dependency is an outage, logged in one line; anything else is a bug.
    if isinstance(exc, UNAVAILABLE):
        log.warning("%s: a dependency is unavailable (%s)", what, exc)
    else:
        log.error("%s", what, exc_info=exc)
