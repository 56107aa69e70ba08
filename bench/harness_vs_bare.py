"""PERF-01 and ISO-04, the client side: does the harness keep up with a bare client?

N people with two devices each (2N sockets) against one reference backend instance it
starts on loopback. The same work twice, in one run, one client after the other: the
harness's (RecordedConnection, every frame through the LeakDetector, private markers in the
questions) and a bare loop (a plain ``websockets`` client with the same tokens, frames
parsed and matched by id, nothing checked). Both open every socket with the same number of
handshakes in flight, have every laptop ask its questions at once, and fence every socket.
Printed side by side: connect rate, agent events received per second, answer latency,
final sweep and client CPU per person, with the ratios harness / bare.

    python -m bench.harness_vs_bare [--people 50] [--questions 1] [--rounds 2] [--quick]
    python -m bench.harness_vs_bare --people 1000     # the issue's size (minutes)

Thresholds: bench/thresholds.toml [harness_vs_bare]; result: bench/results/harness_vs_bare.json.
Exits non-zero when a threshold is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from bench.load import (IN_FLIGHT, PhaseFigures, Person, bare_run, bounded, ratio, reference_backend,
                        report_line, sign_up_people)
from support.benchmarks import check_at_least, check_at_most, thresholds, write_result
from support.connection import RecordedConnection
from support.launcher import say
from support.leaks import SESSION, LeakDetector, Party

NAME = "harness_vs_bare"


async def harness_run(socket_url: str, people: list[Person], questions: int, timeout: float) -> PhaseFigures:
    """The harness's way: recorded connections and the leak detector on every frame."""
    figures = PhaseFigures()
    cpu = time.process_time()
    detector = LeakDetector()
    parties = []
    for person in people:
        user = Party(person.name, person.laptop.user_id)
        detector.own(user, person.laptop.user_id, "user id")
        detector.own(user, person.email, "e-mail address")
        for device in person.devices:
            detector.own(user, device.session_id, f"session id ({device.name})")
            parties.append((Party(person.name, device.user_id, device.session_id, device.name), device))

    async def open_one(party: Party, device) -> RecordedConnection:
        connection = RecordedConnection(party, detector)
        await connection.open(socket_url, carrier="bearer header", token=device.access_token, timeout=30,
                              origin="https://app.example.com")
        await connection.wait_for(lambda f: f.type == "connected", "the welcome frame", timeout)
        return connection

    started = time.perf_counter()
    connections = await bounded([open_one(party, device) for party, device in parties])
    figures.connect_seconds, figures.sockets = time.perf_counter() - started, len(connections)
    laptops = connections[0::2]

    async def ask(connection: RecordedConnection) -> None:
        for _ in range(questions):
            marker = detector.private_marker(connection.owner, SESSION)
            request_id = connection.next_id("chat")
            asked = time.perf_counter()
            since = await connection.send({"type": "chat", "id": request_id,
                                           "payload": {"text": f"What is my balance? (ref {marker})"}})
            try:
                answer = await connection.wait_for(
                    lambda f: f.id == request_id and f.type in ("agent_completed", "error"),
                    "the end of the agent's run", timeout, since)
            except AssertionError:
                figures.unanswered += 1
                continue
            if answer.type != "agent_completed":
                figures.errors.append(answer.text[:200])
                figures.unanswered += 1
            else:
                figures.latencies.append(time.perf_counter() - asked)

    started = time.perf_counter()
    await asyncio.gather(*(ask(connection) for connection in laptops))
    figures.ask_seconds = time.perf_counter() - started

    async def fence(connection: RecordedConnection) -> None:
        try:
            await connection.fence(timeout, backstop=0)
        except AssertionError as error:
            figures.errors.append(str(error)[:200])

    started = time.perf_counter()
    await bounded([fence(c) for c in connections], IN_FLIGHT)  # as Cast.fence_all does
    figures.sweep_seconds = time.perf_counter() - started
    for connection in connections:
        received = connection.received()
        figures.frames += len(received)
        figures.events += sum(1 for f in received if (f.type or "").startswith(("agent_", "tool_")))
    figures.leaks = len(detector.violations)
    figures.cpu_seconds = time.process_time() - cpu
    await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50, help="people, two sockets each (default 50)")
    parser.add_argument("--questions", type=int, default=1, help="questions each person's laptop asks (default 1)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one answer (default 30)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both clients, the order swapped each round (default 2)")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 10 people, to prove it runs")
    options = parser.parse_args(argv)
    if options.quick:
        options.people, options.questions, options.rounds = min(options.people, 10), 1, 1
    if not 1 <= options.people <= 5000 or not 1 <= options.questions <= 20 or not 1 <= options.rounds <= 10:
        parser.error("--people must be 1 to 5000, --questions 1 to 20 and --rounds 1 to 10")
    limits = thresholds(NAME)

    with reference_backend() as backend:
        say(f"signing up {options.people} people, each on a laptop and a phone")
        people = asyncio.run(sign_up_people(backend.url, options.people))
        # A first burst at full size grows the backend's pools; neither client is to pay for it.
        say("warm-up: every person once, bare client")
        asyncio.run(bare_run(backend.socket_url, people, 1, options.timeout))
        runs = {"harness": [], "bare": []}
        clients = [("bare", bare_run), ("harness", harness_run)]
        for number in range(options.rounds):
            # Each round swaps which client goes first, so neither always meets the backend warmer.
            for label, run in (clients if number % 2 == 0 else clients[::-1]):
                say(f"round {number + 1}, {label}: {2 * len(people)} sockets, {options.questions} question(s) per laptop")
                runs[label].append(asyncio.run(run(backend.socket_url, people, options.questions, options.timeout)))

    harness, bare = PhaseFigures.combined(runs["harness"]), PhaseFigures.combined(runs["bare"])
    people_count = options.people
    measured = {"people": people_count, "sockets_per_person": 2, "questions_per_person": options.questions,
                "rounds": options.rounds,
                "harness": harness.summary(people_count), "bare": bare.summary(people_count),
                "ratios": {"connect_rate": round(ratio(harness.connect_rate, bare.connect_rate), 3),
                           "events_per_second": round(ratio(harness.events_per_second, bare.events_per_second), 3),
                           "client_cpu_per_person": round(ratio(harness.cpu_seconds, bare.cpu_seconds), 3)}}
    checks = [check_at_least("connect rate, harness / bare", measured["ratios"]["connect_rate"],
                             limits["connect_rate_ratio_min"]),
              check_at_least("events per second, harness / bare", measured["ratios"]["events_per_second"],
                             limits["events_per_second_ratio_min"]),
              check_at_most("leaks seen by the harness", harness.leaks, limits["leaks_max"]),
              check_at_most("answers missing, harness", harness.unanswered, 0),
              check_at_most("answers missing, bare", bare.unanswered, 0)]
    h, b = measured["harness"], measured["bare"]
    print(f"{people_count} people x 2 sockets, {options.questions} question(s) each, one reference backend, "
          f"{options.rounds} round(s) of each client")
    print(report_line("connect rate", harness.connect_rate, bare.connect_rate, "sockets/s"))
    print(report_line("agent events received", harness.events_per_second, bare.events_per_second, "events/s"))
    print(report_line("answer median", h["answer_median_ms"] or 0, b["answer_median_ms"] or 0, "ms"))
    print(report_line("answer p99", h["answer_p99_ms"] or 0, b["answer_p99_ms"] or 0, "ms"))
    print(report_line("final sweep", harness.sweep_seconds * 1000, bare.sweep_seconds * 1000, "ms"))
    print(report_line("client CPU per person", h["client_cpu_ms_per_person"], b["client_cpu_ms_per_person"], "ms"))
    for check in checks:
        print(f"  {check}")
    for error in harness.errors[:3] + bare.errors[:3]:
        print(f"  error: {error}")
    path = write_result(NAME, measured=measured, checks=checks, quick=options.quick)
    print(f"result: {path}")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
