"""The built-in agents: deterministic, they answer a chat question by quoting it.

Every run is recorded in agent_executions and reports its progress as five events
published on the asking session's channel, all carrying the chat message's id, the agent
and, from tool_executing on, the tool. The row is marked completed just before the last
event goes out.

Before anything runs, the socket's plan and role must allow the tool (else one
`permission_denied` event) and the plan's daily allowance must have room (else an
`usage_limit_reached` error); either refusal is recorded with status `refused`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from . import db, fanout
from .fanout import Fanout, session_channel
from .messages import error_frame, frame
from .plans import Plan, Role, refusal
from .tokens import Identity
from .tools import TOOLS

log = logging.getLogger(__name__)

AGENTS = ("assistant", "researcher", "planner")
DEFAULT_AGENT = "assistant"
EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")

Reply = Callable[[dict[str, Any]], None]
UNAVAILABLE = db.UNAVAILABLE + fanout.UNAVAILABLE
# A run whose end could not be recorded (the database was out of reach) is recorded again
# this often until the database answers: no run is left "running" (contract section 16).
SETTLE_RETRY_SECONDS = 0.25


class Ask(NamedTuple):
    """One chat message: who asks, its id, the question, and the agent and tool it names."""

    identity: Identity
    request_id: str
    question: str
    agent: str
    tool: str


def script(run_id: UUID, ask: Ask) -> list[tuple[str, dict[str, Any]]]:
    """The events of one run, in order. The thought, tool input and answer quote the question."""
    run, agent, tool, question = str(run_id), ask.agent, ask.tool, ask.question
    finding = TOOLS[tool].run(question)
    return [
        ("agent_started", {"run_id": run, "agent": agent}),
        ("agent_thinking", {"run_id": run, "agent": agent,
                            "thought": f'The user asks "{question}". I will use {tool} to answer.'}),
        ("tool_executing", {"run_id": run, "agent": agent, "tool": tool, "input": question}),
        ("tool_completed", {"run_id": run, "agent": agent, "tool": tool, "output": finding}),
        ("agent_completed", {"run_id": run, "agent": agent, "tool": tool,
                             "answer": f'You asked "{question}". {finding}'}),
    ]


def seconds_until_tomorrow(now: datetime | None = None) -> int:
    """Whole seconds until the next UTC midnight, when the daily allowance starts again (>= 1)."""
    now = now or datetime.now(timezone.utc)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), timezone.utc)
    return max(1, math.ceil((midnight - now).total_seconds()))


class Agent:
    def __init__(self, pool: asyncpg.Pool, fanout: Fanout):
        self._pool = pool
        self._fanout = fanout
        self._runs: set[asyncio.Task[None]] = set()

    def start(self, ask: Ask, plan: Plan, role: Role, reply: Reply, turn: asyncio.Lock) -> None:
        """Answer in the background so the socket keeps reading.

        `plan` and `role` are the asking socket's. `reply` sends a frame straight to the
        asking socket (errors only); runs holding the same `turn` lock run one after
        another, in the order started.
        """
        task = asyncio.create_task(self._run(ask, plan, role, reply, turn), name=f"agent-{ask.request_id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def close(self) -> None:
        """Cancel unfinished runs (they are marked failed) and wait for them."""
        for task in self._runs:
            task.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)

    async def _run(self, ask: Ask, plan: Plan, role: Role, reply: Reply, turn: asyncio.Lock) -> None:
        async with turn:
            identity, request_id = ask.identity, ask.request_id
            channel = session_channel(identity.session_id)
            record = {"user_id": identity.user_id, "session_id": identity.session_id, "request_id": request_id,
                      "agent": ask.agent, "tool": ask.tool}
            try:
                reason = refusal(plan, role, ask.tool)
                if reason is not None:
                    await db.record_refusal(self._pool, **record, error=f"permission_denied: {reason}")
                    # In place of the run's events, where they would have gone.
                    await self._fanout.publish(channel, frame("permission_denied", request_id,
                                                              {"tool": ask.tool, "reason": reason}))
                    return
                run_id, allowed = await db.start_execution(self._pool, **record, runs_per_day=plan.agent_runs_per_day)
            except Exception as exc:
                _log_failure(f"could not start an agent run for request {request_id!r}", exc)
                reply(error_frame("agent_failed", "the agent could not start; try again", request_id))
                return
            if not allowed:
                limit = plan.agent_runs_per_day
                reply(error_frame("usage_limit_reached", f"the {plan.name} plan allows {limit} agent runs a day; "
                                  "the allowance starts again at midnight UTC", request_id,
                                  limit=limit, retry_after_seconds=seconds_until_tomorrow()))
                return
            try:
                *progress, (last, result) = script(run_id, ask)
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
        except UNAVAILABLE as exc:
            _log_failure(f"could not mark agent run {run_id} failed yet; retrying until the database answers", exc)
            self._settle_later(run_id, error)
        except Exception as exc:
            _log_failure(f"could not mark agent run {run_id} failed", exc)

    def _settle_later(self, run_id: UUID, error: str) -> None:
        task = asyncio.create_task(self._settle(run_id, error), name=f"agent-settle-{run_id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _settle(self, run_id: UUID, error: str) -> None:
        """Record the run failed as soon as the database answers again."""
        while True:
            await asyncio.sleep(SETTLE_RETRY_SECONDS)
            try:
                await db.finish_execution(self._pool, run_id, "failed", error)
            except UNAVAILABLE:
                continue
            except Exception as exc:
                _log_failure(f"could not mark agent run {run_id} failed", exc)
                return
            log.info("agent run %s recorded failed now that the database answers again", run_id)
            return


def _log_failure(what: str, exc: Exception) -> None:
    # An unreachable dependency is an outage, logged in one line; anything else is a bug.
    if isinstance(exc, UNAVAILABLE):
        log.warning("%s: a dependency is unavailable (%s)", what, exc)
    else:
        log.error("%s", what, exc_info=exc)
