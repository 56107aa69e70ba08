"""Stateful exploration of isolation (ISO-08, support/exploration.py), in the test command.

Three people on two devices each interleave the contract's operations at random against a
model of who may see what, on an embedded reference backend started here; after every step
the leak detector must have seen nothing and every device must have received exactly what the
model says. Fixed seed, a bounded number of examples and steps: about ten seconds. A longer
exploration: ``python -m bench.explore`` (README).

It is also seen finding a planted leak (a write in a thread kept to one device fanned out to
every device of its user, tests/planted/lifecycle_defects.py) and printing the shrunk sequence
as a scenario whose every sentence is a step of the catalogue.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time

import parse

import pytest

from conftest import REPO, start_planted_backends
from support.exploration import ExplorationFailed, Target, explore
from support.launcher import EmbeddedServices
from support.loop import HarnessLoop
from support.phrases import PHRASE_TYPES
from support.steps_doc import read_catalog

SEED, EXAMPLES, STEPS = 20261201, 25, 15
ENVIRONMENT = {"BACKEND_MODE": "development", "HEARTBEAT_INTERVAL_SECONDS": "5", "HEARTBEAT_TIMEOUT_SECONDS": "5",
               "ALLOWED_ORIGINS": "https://app.example.com"}


@pytest.fixture(scope="module")
def lab():
    """One PostgreSQL and Redis; per test, a backend with or without a planted defect, and the loop."""
    services = EmbeddedServices()
    loop = HarnessLoop()
    database, redis = services.start_postgres(), services.start_redis()
    started = []

    def target(defect: str) -> Target:
        secret = secrets.token_urlsafe(32)
        environment = {**ENVIRONMENT, "JWT_SECRET": secret, "DATABASE_URL": database, "REDIS_URL": redis}
        (backend,) = start_planted_backends(services, {f"explored-{defect}": (defect, environment)},
                                            module="tests.planted.lifecycle_defects")
        started.append(backend)
        return Target(backend.url, secret, loop).start()

    yield target
    loop.close()
    services.stop()


def test_the_exploration_finds_nothing_against_the_reference_backend(lab):
    target = lab("none")
    began = time.monotonic()
    try:
        examples = explore(target, seed=SEED, examples=EXAMPLES, steps=STEPS)
    finally:
        target.close()
    assert examples >= EXAMPLES
    assert time.monotonic() - began < 60, "the exploration in the test command must stay short"


def test_the_exploration_finds_a_planted_leak_and_prints_it_as_a_scenario(lab, capsys):
    target = lab("scoped-write-fanned-out-per-user")
    try:
        with pytest.raises(ExplorationFailed) as failed:
            explore(target, seed=SEED, examples=40, steps=STEPS)
    finally:
        target.close()
    scenario = failed.value.scenario
    print(scenario)  # shown with -s: what a product owner pastes into a feature
    assert "isolation broken" in str(failed.value) or "received what the model does not say" in str(failed.value)
    lines = [line.strip() for line in scenario.splitlines()]
    assert lines[0] == "@req.ISO-08 @critical" and lines[1].startswith("Scenario: ")
    assert re.search(r'starts a thread "[^"]+" on (her|his) (laptop|phone) kept to that device', scenario)
    assert "writes" in scenario and lines[-1].endswith("nobody receives anything that belongs to someone else")
    # Shrunk: the thread, the write, and little else.
    assert len(lines) - 4 <= 4, scenario
    # Every sentence is a step of the catalogue (`behave --steps-catalog`), of its keyword's kind.
    listed = subprocess.run([sys.executable, "-m", "behave", "--steps-catalog", "--dry-run", "--no-summary"],
                            cwd=REPO, capture_output=True, text=True).stdout
    steps = [(step.keyword, parse.compile(step.phrase, extra_types=PHRASE_TYPES)) for step in read_catalog(listed)]
    kind = None
    for line in lines[2:]:
        keyword, sentence = line.split(" ", 1)
        kind = kind if keyword == "And" else keyword
        assert any(k == kind and pattern.parse(sentence) for k, pattern in steps), f"not a step of the catalogue: {line}"
