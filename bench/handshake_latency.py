"""PERF-02 and AUTH-08, the part that is measured rather than asserted: what an accepted
handshake costs on the reference backend, next to a bare server doing the same JWT check.

Starts, on loopback, one reference backend instance (with its PostgreSQL and Redis) and
bench/bare_server.py (``websockets.serve``, the same HS256 check of the same token, nothing
else), then opens sockets on the two in turn with the same plain ``websockets`` client and
the same token, a round at a time, so both see the same machine at the same moment. A
handshake is timed from the connect call to the 101; the welcome frame is timed too. The
first tenth of the rounds warms up and is not counted.

Printed: the medians and 95th percentiles side by side and the ratio of the medians,
backend / bare. PERF-02 asks for a ratio of at most 1.5 (bench/thresholds.toml
[handshake_latency]); the result goes to bench/results/handshake_latency.json, and the exit
code is non-zero when the ratio is missed.

    python -m bench.handshake_latency [--rounds 300] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import httpx
from websockets.asyncio.client import connect

from bench.load import ORIGIN, bare_server, percentile, reference_backend, sign_up_people
from support.benchmarks import check_at_most, thresholds, write_result
from support.launcher import say

NAME = "handshake_latency"


async def one_handshake(url: str, token: str) -> tuple[float, float]:
    """Seconds to the 101, and to the welcome frame."""
    started = time.perf_counter()
    socket = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, origin=ORIGIN,
                           ping_interval=None, open_timeout=10)
    accepted = time.perf_counter() - started
    try:
        welcome = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if welcome.get("type") != "connected":
            raise RuntimeError(f"{url} sent {welcome} instead of the welcome frame")
        return accepted, time.perf_counter() - started
    finally:
        await socket.close()


async def measure(targets: dict[str, str], token: str, rounds: int) -> dict[str, dict[str, list[float]]]:
    samples = {name: {"accepted": [], "welcome": []} for name in targets}
    for round_number in range(rounds):
        # Alternate which goes first, so neither always finds the machine just woken up.
        order = list(targets.items()) if round_number % 2 else list(reversed(targets.items()))
        for name, url in order:
            accepted, welcome = await one_handshake(url, token)
            if round_number >= rounds // 10:
                samples[name]["accepted"].append(accepted)
                samples[name]["welcome"].append(welcome)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="handshakes on each server (default 300)")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 40 rounds, to prove it runs")
    options = parser.parse_args(argv)
    if options.quick:
        options.rounds = min(options.rounds, 40)
    if not 10 <= options.rounds <= 10_000:
        parser.error("--rounds must be 10 to 10000")
    limit = thresholds(NAME)["median_ratio_max"]

    with reference_backend() as backend:
        auth = httpx.get(backend.url + "/ws/config", timeout=10).json()["auth"]
        person = asyncio.run(sign_up_people(backend.url, 1))[0]
        with bare_server(backend.secret, auth["issuer"], auth["audience"]) as (bare_url, _):
            say(f"timing {options.rounds} accepted handshakes on the reference backend and on a bare server")
            samples = asyncio.run(measure({"backend": backend.socket_url, "bare": bare_url},
                                          person.laptop.access_token, options.rounds))

    def figures(values: list[float]) -> dict:
        ordered = sorted(values)
        return {"median_ms": round(statistics.median(ordered) * 1000, 3),
                "p95_ms": round(percentile(ordered, 0.95) * 1000, 3)}

    measured = {"rounds": options.rounds, "counted": len(samples["bare"]["accepted"])}
    for name in ("backend", "bare"):
        measured[name] = {kind: figures(values) for kind, values in samples[name].items()}
    ratio = measured["backend"]["accepted"]["median_ms"] / measured["bare"]["accepted"]["median_ms"]
    measured["median_ratio"] = round(ratio, 3)
    measured["welcome_median_ratio"] = round(
        measured["backend"]["welcome"]["median_ms"] / measured["bare"]["welcome"]["median_ms"], 3)
    checks = [check_at_most("accepted handshake median, backend / bare", ratio, limit)]
    print(f"{measured['counted']} accepted handshakes counted on each server (of {options.rounds})")
    for kind, label in (("accepted", "to the 101"), ("welcome", "to the welcome frame")):
        backend_figures, bare_figures = measured["backend"][kind], measured["bare"][kind]
        print(f"  {label:<22} backend median {backend_figures['median_ms']:7.2f} ms  p95 {backend_figures['p95_ms']:7.2f} ms"
              f" | bare median {bare_figures['median_ms']:7.2f} ms  p95 {bare_figures['p95_ms']:7.2f} ms"
              f" | ratio {backend_figures['median_ms'] / bare_figures['median_ms']:.2f}")
    for check in checks:
        print(f"  {check}")
    path = write_result(NAME, measured=measured, checks=checks, quick=options.quick)
    print(f"result: {path}")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
