"""The load profile's pacing, figures and latency check (support/load_profile.py), without a server.

The questions go to real RecordedConnection transcripts (frames written as a socket's reader
writes them); only the socket underneath is absent, which these checks never touch.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from support.actors import AgentRequest
from support.connection import Frame
from support.load_profile import LoadRun, _percentile, ask_over, check_answers_within
from support.phrases import Share, parse_period, parse_share


class Transcript:
    """The part of a RecordedConnection the figures read: the frames, and what was received."""

    def __init__(self):
        self.transcript: list[Frame] = []

    def received(self, since: int = 0) -> list[Frame]:
        return [f for f in self.transcript[since:] if f.direction == "received"]


class Device:
    def __init__(self, name: str):
        self.name = name
        self.connection = Transcript()
        self.tabs = [self.connection]

    def __str__(self) -> str:
        return self.name


def answered(device: Device, request_id: str, asked_at: float, after: float | None) -> AgentRequest:
    """A question asked at ``asked_at`` whose agent_completed came ``after`` seconds later (None: never)."""
    connection = device.connection
    connection.transcript.append(Frame("sent", asked_at, json.dumps({"type": "chat", "id": request_id})))
    request = AgentRequest(request_id, device, "q", "marker", len(connection.transcript) - 1, at=asked_at)
    if after is not None:
        for kind in ("agent_started", "agent_completed"):
            connection.transcript.append(Frame("received", asked_at + after, json.dumps({"type": kind, "id": request_id})))
    return request


def run_of(latencies: list[float | None]) -> LoadRun:
    device = Device("Visitor001's laptop")
    requests = [answered(device, f"q{n}", 1000.0 + n, value) for n, value in enumerate(latencies)]
    return LoadRun([], requests, 60.0, 1000.0, 1000.0 + len(latencies) + 5)


def test_99_in_100_within_2_seconds_passes_with_one_late_answer_in_a_hundred():
    check_answers_within(run_of([0.1] * 99 + [3.0]), Share(99, 100), 2.0)


def test_two_late_answers_in_a_hundred_fail_saying_how_many_and_how_slow():
    with pytest.raises(AssertionError, match=r"98 of 100 answers arrived within 2 s; expected at least 99 in 100 "
                                             r"\(99\).*slowest 3\.50 s \(Visitor001's laptop\)"):
        check_answers_within(run_of([0.1] * 98 + [3.0, 3.5]), Share(99, 100), 2.0)


def test_an_answer_that_never_came_counts_as_late():
    with pytest.raises(AssertionError, match="1 never completed"):
        check_answers_within(run_of([0.1] * 9 + [None]), Share(10, 10), 2.0)


def test_a_share_beyond_its_whole_is_refused_in_words():
    with pytest.raises(AssertionError, match="names more than the whole"):
        check_answers_within(run_of([0.1]), Share(101, 100), 2.0)


def test_figures_read_off_the_transcripts():
    figures = run_of([0.010, 0.020, 0.030, None]).figures(frames_checked=42, leaks=0)
    assert (figures["questions"], figures["answered"], figures["events"]) == (4, 3, 6)
    assert figures["answer_p50"] == pytest.approx(0.020) and figures["answer_max"] == pytest.approx(0.030)
    text = LoadRun.report(figures)
    assert "3 of 4 completed" in text and "median 20 ms" in text and "42 frames checked, 0 leak(s)" in text


def test_nearest_rank_percentiles():
    ordered = [float(n) for n in range(1, 101)]
    assert (_percentile(ordered, 50), _percentile(ordered, 99), _percentile(ordered, 100)) == (50.0, 99.0, 100.0)
    assert _percentile([], 99) is None


def test_questions_are_spread_evenly_over_the_period():
    class Person:
        def __init__(self, name):
            self.name = name
            self.asked: list[float] = []

        def device(self, name):
            return Device(name)

        async def ask(self, device, question):
            self.asked.append(asyncio.get_running_loop().time())
            return answered(Device(device), question, 0.0, None)

    people = [Person(f"P{n}") for n in range(4)]
    start = None

    async def main():
        nonlocal start
        start = asyncio.get_running_loop().time()
        return await ask_over(people, "laptop", 2, 0.4, "{name} {number}", answer=lambda request: asyncio.sleep(0))

    run = asyncio.run(main())
    offsets = sorted(round(t - start, 2) for person in people for t in person.asked)
    assert len(run.requests) == 8
    assert offsets == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35], abs=0.03)


def test_the_words_of_the_sentence():
    assert (parse_period("a minute"), parse_period("2 seconds"), parse_period("90 seconds")) == (60.0, 2.0, 90.0)
    assert parse_share("99 in 100") == Share(99, 100) and str(Share(19, 20)) == "19 in 20"
