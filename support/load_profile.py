"""The load profile (PERF-01, ISO-04): many people asking over a period, and what that measured.

Each of N people asks Q questions from one of their devices; the N x Q questions are spread
evenly over the period the feature names, person after person, so the service meets a steady
stream rather than one burst. Every frame of every socket goes through the scenario's leak
detector and contract check as it arrives, as in any scenario; this module only paces the
questions and reads the figures off the transcripts afterwards:

- connect rate: the crowd's sockets over the time from the first handshake request to the
  last accepted handshake;
- events per second: agent events received on the askers' sockets, from the first question
  to the last answer;
- answer latency: from the moment a question left the client to the arrival of its
  ``agent_completed`` frame, both read by the client's clock.

The figures go to the console and to the report as an attachment of the scenario
(``LoadRun.report``); a share of answers within a time is checked by
``check_answers_within``, in the words of the feature ("99 in 100 answers ... 2 seconds").
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .actors import Actor, AgentRequest
from .phrases import Share

AGENT_EVENTS = ("agent_", "tool_")


@dataclass
class LoadRun:
    """The questions of one load profile, once every one of them has ended or timed out."""

    people: list[Actor]
    requests: list[AgentRequest]
    period: float
    asked_from: float    # wall-clock time of the first question
    ended_at: float      # wall-clock time the last answer came, or the wait for it gave up

    def latencies(self) -> list[float | None]:
        """Seconds from each question to its agent_completed frame; None for one never completed."""
        return [_latency(request) for request in self.requests]

    def figures(self, frames_checked: int, leaks: int) -> dict:
        """What the profile measured, for the console, the report and the check."""
        connections = [tab for person in self.people for device in person.devices.values() for tab in device.tabs]
        handshakes = [(tab.transcript[0].at, _accepted_at(tab)) for tab in connections if tab.transcript]
        accepted = [done for _, done in handshakes if done is not None]
        connect_seconds = (max(accepted) - min(start for start, _ in handshakes)) if accepted else 0.0
        askers = {id(request.device): request.device for request in self.requests}
        events = sum(1 for device in askers.values() for tab in device.tabs for frame in tab.received()
                     if (frame.type or "").startswith(AGENT_EVENTS) and self.asked_from <= frame.at <= self.ended_at)
        answered = sorted(value for value in self.latencies() if value is not None)
        asking = max(self.ended_at - self.asked_from, 1e-9)
        return {
            "people": len(self.people), "sockets": len(connections), "accepted": len(accepted),
            "connect_rate": len(accepted) / connect_seconds if connect_seconds > 0 else None,
            "questions": len(self.requests), "answered": len(answered), "period_seconds": self.period,
            "asking_seconds": asking, "events": events, "events_per_second": events / asking,
            "answer_p50": _percentile(answered, 50), "answer_p90": _percentile(answered, 90),
            "answer_p99": _percentile(answered, 99), "answer_max": answered[-1] if answered else None,
            "frames_checked": frames_checked, "leaks": leaks,
        }

    @staticmethod
    def report(figures: dict) -> str:
        """The figures as a few lines a person reads."""
        def seconds(value: float | None) -> str:
            return "none" if value is None else f"{value * 1000:.0f} ms"

        rate = figures["connect_rate"]
        return "\n".join([
            f"load profile: {figures['people']:,} people, {figures['sockets']:,} sockets "
            f"({figures['accepted']:,} accepted), {figures['questions']:,} questions over {figures['period_seconds']:g} s",
            f"  connect rate       {rate:,.0f} sockets/s" if rate else "  connect rate       not measured",
            f"  answers            {figures['answered']:,} of {figures['questions']:,} completed, "
            f"in {figures['asking_seconds']:.1f} s from the first question to the last answer",
            f"  agent events       {figures['events']:,} received, {figures['events_per_second']:,.0f} events/s",
            f"  answer latency     median {seconds(figures['answer_p50'])}, 90th percentile "
            f"{seconds(figures['answer_p90'])}, 99th percentile {seconds(figures['answer_p99'])}, "
            f"slowest {seconds(figures['answer_max'])}",
            f"  isolation          {figures['frames_checked']:,} frames checked, {figures['leaks']} leak(s) seen "
            "so far (every socket is swept after this)",
        ])


async def ask_over(people: list[Actor], device: str, count: int, period: float, question: str,
                   answer: Callable[[AgentRequest], Awaitable] | None = None) -> LoadRun:
    """Everyone asks ``count`` questions from ``device``, spread evenly over ``period`` seconds; then
    waits for every answer (by default the asker's ``answer_to``: as long as any answer may take)."""
    answer = answer or (lambda request: request.device.actor.answer_to(request))
    if not people:
        raise AssertionError("nobody to ask: this step needs a group of people earlier in the scenario")
    loop = asyncio.get_running_loop()
    total = len(people) * count
    begin = loop.time()
    asked: list[list[AgentRequest]] = [[] for _ in people]

    async def one_person(position: int, person: Actor) -> None:
        entry = person.device(device)
        for number in range(count):
            # Question k of person i goes out at (k * N + i) / (N * Q) of the period: a steady stream.
            due = begin + period * (number * len(people) + position) / total
            await asyncio.sleep(max(0.0, due - loop.time()))
            asked[position].append(await person.ask(entry.name, question.format(number=number + 1, name=person.name)))

    started = time.time()
    await asyncio.gather(*(one_person(position, person) for position, person in enumerate(people)))
    requests = [request for own in asked for request in own]
    await asyncio.gather(*(answer(request) for request in requests),
                         return_exceptions=True)  # a missing answer is the Then steps' to report
    return LoadRun(people, requests, period, started, time.time())


def check_answers_within(run: LoadRun, share: Share, seconds: float) -> None:
    """At least ``share`` of the questions were completed within ``seconds``; one never completed counts as late."""
    if share.part > share.whole:
        raise AssertionError(f"'{share}' names more than the whole; expected a share such as '99 in 100'")
    latencies = run.latencies()
    needed = math.ceil(len(latencies) * share.part / share.whole)
    within = sum(1 for value in latencies if value is not None and value <= seconds)
    if within < needed:
        answered = sorted(value for value in latencies if value is not None)
        slowest = max(run.requests, key=lambda request: _latency(request) or math.inf)
        raise AssertionError(
            f"{within:,} of {len(latencies):,} answers arrived within {seconds:g} s; expected at least {share} "
            f"({needed:,}) - {len(latencies) - len(answered):,} never completed, median "
            f"{_shown(_percentile(answered, 50))}, 99th percentile {_shown(_percentile(answered, 99))}, "
            f"slowest {_shown(_latency(slowest))} ({slowest.device})")


def _latency(request: AgentRequest) -> float | None:
    connection = request.device.connection  # the socket it was asked on (one per device here)
    if connection is None:
        return None
    for frame in connection.received(request.sent_index):
        if frame.id == request.id and frame.type == "agent_completed":
            return frame.at - request.at
    return None


def _accepted_at(connection) -> float | None:
    return next((frame.at for frame in connection.transcript
                 if frame.direction == "handshake" and frame.text.startswith("accepted")), None)


def _percentile(ordered: list[float], percent: float) -> float | None:
    """The nearest-rank percentile of an ascending list (None when it is empty)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(len(ordered) * percent / 100))
    return ordered[rank - 1]


def _shown(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f} s"
