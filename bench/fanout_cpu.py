"""PERF-01, the backend side: events delivered per CPU-second of the backend process.

N people with two devices each against one reference backend instance on loopback, read by
the bare client of bench/load.py, which costs the machine least. Two measurements in one
run, each between two readings of the backend's CPU time (user + system, /proc/<pid>/stat):

- fan-out: agent-event frames published straight onto each session's channel in Redis
  (``events:session:<sid>``, docs/contract.md section 6), forwarded by the backend to the
  sockets; this is what the threshold judges;
- end to end: every socket asks its questions one after the other (at most 2N runs in
  flight), so each event also costs its agent run and its database records.

    python -m bench.fanout_cpu [--people 40] [--published 300] [--questions 5] [--quick]

Threshold: bench/thresholds.toml [fanout_cpu]; result: bench/results/fanout_cpu.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import redis.asyncio as redis

from bench.load import BareSocket, bounded, reference_backend, sign_up_people
from support.benchmarks import check_at_least, check_at_most, process_cpu_seconds, thresholds, write_result
from support.launcher import say

NAME = "fanout_cpu"


async def measure(socket_url: str, people, questions: int, backend_pid: int, timeout: float) -> dict:
    sockets = await bounded([BareSocket().open(socket_url, device.access_token)
                             for person in people for device in person.devices])
    unanswered, errors = 0, []

    async def ask(number: int, socket: BareSocket) -> None:
        nonlocal unanswered
        for question in range(questions):
            try:
                answer = await socket.request({"type": "chat", "id": f"fanout-{number}-{question}",
                                               "payload": {"text": f"What is my balance? ({number}.{question})"}},
                                              timeout)
            except asyncio.TimeoutError:
                unanswered += 1
                continue
            if answer["type"] != "agent_completed":
                unanswered += 1
                errors.append(str(answer)[:200])

    try:
        before = [s.events for s in sockets]
        backend_cpu, client_cpu, started = process_cpu_seconds(backend_pid), time.process_time(), time.perf_counter()
        await asyncio.gather(*(ask(number, socket) for number, socket in enumerate(sockets)))
        wall = time.perf_counter() - started
        backend_cpu = process_cpu_seconds(backend_pid) - backend_cpu
        client_cpu = time.process_time() - client_cpu
        events = sum(s.events for s in sockets) - sum(before)
    finally:
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    return {"sockets": len(sockets), "questions": len(sockets) * questions, "events": events,
            "unanswered": unanswered, "errors": errors[:5], "wall_s": round(wall, 3),
            "backend_cpu_s": round(backend_cpu, 3), "client_cpu_s": round(client_cpu, 3),
            "events_per_backend_cpu_s": round(events / backend_cpu, 1) if backend_cpu else None,
            "events_per_client_cpu_s": round(events / client_cpu, 1) if client_cpu else None,
            "events_per_wall_s": round(events / wall, 1) if wall else None}


async def measure_fanout(socket_url: str, redis_url: str, people, per_socket: int, backend_pid: int,
                         timeout: float) -> dict:
    """Publish ``per_socket`` agent events on every session's channel; count what arrives."""
    devices = [device for person in people for device in person.devices]
    sockets = await bounded([BareSocket().open(socket_url, device.access_token) for device in devices])
    publisher = redis.Redis.from_url(redis_url)
    expected = len(sockets) * per_socket
    try:
        before = sum(s.events for s in sockets)
        backend_cpu, started = process_cpu_seconds(backend_pid), time.perf_counter()
        for start in range(0, per_socket, 10):
            batch = publisher.pipeline(transaction=False)
            for device in devices:
                for number in range(start, min(per_socket, start + 10)):
                    batch.publish(f"events:session:{device.session_id}", json.dumps(
                        {"type": "agent_thinking", "id": f"fanout-{number}", "ts": "2026-01-01T00:00:00Z",
                         "payload": {"run_id": "bench", "agent": "assistant", "thought": "published by the benchmark"}}))
            await batch.execute()
        deadline = time.perf_counter() + timeout
        while sum(s.events for s in sockets) - before < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        wall = time.perf_counter() - started
        backend_cpu = process_cpu_seconds(backend_pid) - backend_cpu
        delivered = sum(s.events for s in sockets) - before
    finally:
        await publisher.aclose()
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    return {"sockets": len(sockets), "published": expected, "delivered": delivered, "wall_s": round(wall, 3),
            "backend_cpu_s": round(backend_cpu, 3),
            "events_per_backend_cpu_s": round(delivered / backend_cpu, 1) if backend_cpu else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=40, help="people, two sockets each (default 40)")
    parser.add_argument("--questions", type=int, default=5, help="questions per socket, one after the other (default 5)")
    parser.add_argument("--published", type=int, default=300, help="events published per session channel (default 300)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one answer (default 30)")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 10 people, 3 questions per socket")
    options = parser.parse_args(argv)
    if options.quick:
        options.people, options.questions = min(options.people, 10), min(options.questions, 3)
        options.published = min(options.published, 50)
    if not 1 <= options.people <= 5000 or not 1 <= options.questions <= 50:
        parser.error("--people must be 1 to 5000 and --questions 1 to 50 (the Pro plan allows 60 a minute)")
    limit = thresholds(NAME)["events_per_cpu_second_min"]

    with reference_backend() as backend:
        people = asyncio.run(sign_up_people(backend.url, options.people))
        asyncio.run(measure(backend.socket_url, people[:max(1, len(people) // 10)], 1, backend.pid,
                            options.timeout))  # warm-up
        say(f"fan-out: {options.published} events published on each of {2 * options.people} session channels")
        fanout = asyncio.run(measure_fanout(backend.socket_url, backend.redis_url, people, options.published,
                                            backend.pid, options.timeout))
        say(f"end to end: {2 * options.people} sockets asking {options.questions} question(s) each")
        end_to_end = asyncio.run(measure(backend.socket_url, people, options.questions, backend.pid, options.timeout))
    measured = {"people": options.people, "fanout": fanout, "end_to_end": end_to_end}
    rate = fanout["events_per_backend_cpu_s"] or 0.0
    checks = [check_at_least("fan-out events per backend CPU-second", rate, limit),
              check_at_most("published events not delivered", fanout["published"] - fanout["delivered"], 0),
              check_at_most("answers missing", end_to_end["unanswered"], 0)]
    print(f"{fanout['sockets']} sockets on one reference backend")
    print(f"  fan-out     {fanout['delivered']} of {fanout['published']} published events delivered in "
          f"{fanout['wall_s']:.2f} s, backend CPU {fanout['backend_cpu_s']:.2f} s: "
          f"{rate:.0f} events per backend CPU-second")
    print(f"  end to end  {end_to_end['events']} agent events of {end_to_end['questions']} questions in "
          f"{end_to_end['wall_s']:.2f} s, backend CPU {end_to_end['backend_cpu_s']:.2f} s: "
          f"{end_to_end['events_per_backend_cpu_s']} events per backend CPU-second "
          f"(client {end_to_end['events_per_client_cpu_s']} per client CPU-second)")
    for check in checks:
        print(f"  {check}")
    for error in end_to_end["errors"][:3]:
        print(f"  error: {error}")
    path = write_result(NAME, measured=measured, checks=checks, quick=options.quick)
    print(f"result: {path}")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
