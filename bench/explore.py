"""A longer stateful exploration of isolation (ISO-08) than the test command's.

    python -m bench.explore [--examples 300] [--steps 40] [--seed N] [--defect NAME]

Starts an embedded PostgreSQL, Redis and one reference backend (``--defect`` plants one of
``python -m tests.planted.lifecycle_defects --list`` instead), runs support/exploration.py's
machine, and prints either how much it explored or the shrunk failing sequence as a Gherkin
scenario. Exits 1 on a finding.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time

from support.exploration import ExplorationFailed, Target, explore
from support.launcher import EmbeddedServices
from support.loop import HarnessLoop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explore", description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="sequences to try (default 300)")
    parser.add_argument("--steps", type=int, default=40, help="steps per sequence at most (default 40)")
    parser.add_argument("--seed", type=int, default=secrets.randbelow(2**32), help="default: a random one, printed")
    parser.add_argument("--defect", default="none", help="a planted defect of tests/planted/lifecycle_defects.py")
    arguments = parser.parse_args(argv)
    services, loop = EmbeddedServices(), HarnessLoop()
    try:
        from tests.conftest import start_planted_backends  # the planted program is test code

        secret = secrets.token_urlsafe(32)
        environment = {"BACKEND_MODE": "development", "JWT_SECRET": secret, "ALLOWED_ORIGINS": "https://app.example.com",
                       "DATABASE_URL": services.start_postgres(), "REDIS_URL": services.start_redis()}
        (backend,) = start_planted_backends(services, {"explored": (arguments.defect, environment)},
                                            module="tests.planted.lifecycle_defects")
        target = Target(backend.url, secret, loop).start()
        began = time.monotonic()
        try:
            examples = explore(target, seed=arguments.seed, examples=arguments.examples, steps=arguments.steps)
        except ExplorationFailed as finding:
            print(f"[explore] seed {arguments.seed}: {finding}")
            return 1
        finally:
            target.close()
        print(f"[explore] seed {arguments.seed}: {examples} sequences of up to {arguments.steps} steps, nothing "
              f"found, in {time.monotonic() - began:.0f} s")
        return 0
    finally:
        loop.close()
        services.stop()


if __name__ == "__main__":
    sys.exit(main())
