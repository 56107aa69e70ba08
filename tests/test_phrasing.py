"""Product owners' own phrasing: natural variants match exactly one step; unknown sentences get help.

The variants are the classes a product owner wrote while editing the features (issue 8):
singular and plural, numbers as words, pronouns or none, is/was/are, the business's
synonyms, "the first instance". Each must match exactly one step of the catalogue, with
no new step code. Sentences that match none must be answered with help a non-programmer
can act on, in the dry run and in a real run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO
from support.step_help import SentenceHelp
from support.steps_doc import read_catalog

VARIANTS = [
    ("given", "Alice is connected from her laptop and phone"),
    ("given", "Alice is connected from her laptop and her phone"),
    ("given", "Alice is connected from a tablet"),
    ("given", "Alice is connected from her phone through the first instance"),
    ("given", "Alice is connected from her laptop with a token that expires in 1 second"),
    ("given", "Alice is connected from her laptop with a token that expires in two seconds"),
    ("given", "ten people have accounts on the Free plan"),
    ("given", "1 person has an account on the Free plan"),
    ("given", "Alice has an account on the Free plan as an admin"),
    ("given", "each of them is connected from their laptop and phone"),
    ("given", "Alice may send at most 1 message a minute"),
    ("given", "Alice may keep at most one connection open"),
    ("given", "Alice may run the agent twice a day"),
    ("given", "Bob has started a thread \"Plans\" on his phone for all his devices"),
    ("when", "each of them asks their agent 3 private questions"),
    ("when", "each of them asks their agent a private question at the same time"),
    ("when", "each of them asks their agent 5 private questions from their phone at the same time"),
    ("when", "Alice asks her agent 40 questions within a minute"),
    ("when", "Alice asks her agent one question within a minute"),
    ("when", "Alice asked her agent \"Where is my parcel?\""),
    ("when", "the database becomes unreachable for the service"),
    ("when", "the identity store goes down"),
    ("when", "the user database is reachable again"),
    ("when", "Alice logs out on her laptop"),
    ("when", "Alice opens 1 tab on her laptop at the same moment"),
    ("when", "Alice opens 6 tabs on her laptop at the same moment, spread over two instances"),
    ("when", "each of Alice's devices asks the assistant and the planner at the same time"),
    ("when", "each of them connects from their phone and disconnects 3 times"),
    ("then", "Alice's laptop was disconnected as \"session revoked\""),
    ("then", "no socket is opened"),
    ("then", "the handshake was refused with HTTP 401"),
    ("then", "the others were disconnected as \"connection limit\""),
    ("then", "the service stops counting Alice's laptop's socket within 1 second"),
    ("then", "Alice's phone and tablet stay connected"),
    ("then", "Alice's phone stays connected"),
    ("then", "Alice's laptop received the agent's full answer"),
    ("then", "Alice's last 10 questions are refused as \"rate_limited\" with a hint when to retry"),
    ("then", "Alice's questions past the limit are refused as \"rate_limited\" with a hint when to retry"),
    ("then", "each of them receives the agent's full answers to their own questions"),
    ("then", "Alice's laptop's session is recorded as revoked"),
    ("then", "the heartbeat is sent at least every 1 second"),
]

UNKNOWN = [
    # (keyword, sentence, what the help must say)
    ("given", "Alice is connected from her smartwatch",
     ["unknown devices 'her smartwatch'", "laptop, phone, desktop app and tablet", "docs/steps.md"]),
    ("then", "Alice connects from her laptop", ["this is a When step", "docs/steps.md"]),
    ("then", "Alice's laptop is disconected as \"session revoked\"", ["did you mean", "disconnected as",
                                                                     "docs/steps.md"]),
    ("given", "Alice may keep at most many connections open", ["unknown count 'many connections'",
                                                              "a/one to twelve"]),
]


@pytest.fixture(scope="module")
def sentence_help() -> SentenceHelp:
    catalog = subprocess.run([sys.executable, "-m", "behave", "--steps-catalog", "--no-summary"], cwd=REPO,
                             capture_output=True, text=True, timeout=120).stdout
    steps = read_catalog(catalog)
    assert len(steps) > 50, catalog
    return SentenceHelp((step.keyword.lower(), step.phrase) for step in steps)


@pytest.mark.parametrize("keyword, sentence", VARIANTS, ids=[s for _, s in VARIANTS])
def test_a_natural_variant_matches_exactly_one_step(sentence_help, keyword, sentence):
    matching = sentence_help.matching(keyword, sentence)
    assert len(matching) == 1, (f"{keyword.capitalize()} {sentence!r} matches {len(matching)} steps: "
                                f"{[m.pattern for m in matching]}")


@pytest.mark.parametrize("keyword, sentence, says", UNKNOWN, ids=[s for _, s, _ in UNKNOWN])
def test_an_unknown_sentence_is_answered_with_help(sentence_help, keyword, sentence, says):
    assert sentence_help.matching(keyword, sentence) == []
    text = sentence_help.explain(keyword, sentence)
    for words in says:
        assert words in text, text


FEATURE = """\
@area.ISO
Feature: A product owner's draft

  @req.ISO-01 @normal
  Scenario: Alice on a device the features do not know
    Given Alice has an account on the Free plan
    And Alice is connected from her smartwatch
    Then Alice receives nothing that belongs to Bob
"""


@pytest.fixture
def draft(tmp_path):
    """A draft feature in a project of its own that borrows this one's steps and environment."""
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "draft.feature").write_text(FEATURE, encoding="utf-8")
    (tmp_path / "steps").symlink_to(REPO / "steps")
    (tmp_path / "environment.py").symlink_to(REPO / "environment.py")
    return tmp_path


@pytest.mark.parametrize("mode", ["dry run", "real run"])
def test_the_run_and_the_dry_run_explain_an_unknown_sentence(draft, mode):
    extra = ["--dry-run"] if mode == "dry run" else ["-D", f"allure_results={draft / 'allure'}"]
    completed = subprocess.run([sys.executable, "-m", "behave", "-f", "plain", *extra, "features"], cwd=draft,
                               capture_output=True, text=True, timeout=180,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    output = completed.stdout + completed.stderr
    assert completed.returncode == 1, output
    assert "features/draft.feature:7: No step matches: Given Alice is connected from her smartwatch" in output, output
    assert "laptop, phone, desktop app and tablet" in output
    assert "the sentence it resembles: Given {name} is connected from {devices}" in output
    assert "1 undefined" in output, output
    assert output.index("No step matches") < output.index("You can implement step definitions"), \
        "the plain-words help comes before behave's Python snippet"


def test_the_harness_imports_without_behave():
    """support/ is a library of its own: only the glue (support/report*.py) touches behave, and lazily.

    Every other module of support/ is imported with behave made unimportable."""
    modules = sorted(f"support.{path.stem}" for path in (REPO / "support").glob("*.py")
                     if path.stem != "__init__" and not path.stem.startswith("report"))
    assert "support.harness" in modules and "support.actors" in modules, modules
    script = "import sys; sys.modules['behave'] = None\n" + "".join(f"import {m}\n" for m in modules) + "print('ok')"
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert completed.stdout.strip() == "ok", completed.stderr


def test_a_step_without_the_step_it_builds_on_says_which_one_is_missing():
    from support.harness import ScenarioWorld
    from support.world import MissingStep

    world = object.__new__(ScenarioWorld)
    with pytest.raises(MissingStep, match=r"this step needs a group of people \('Given Alice, Bob and Carol have "
                                          r"accounts on the Free plan'\) earlier in the scenario"):
        world.members()
    world.group = ["Alice"]
    assert world.group == ["Alice"]


def test_the_step_modules_hold_no_wire_code():
    wire = re.compile(r'json\.dumps|import jwt|from jwt|websockets|asyncpg|httpx|"type"\s*:|"jsonrpc"|\.mint\(')
    found = [f"{path.name}:{number}" for path in sorted((REPO / "steps").glob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if wire.search(line)]
    assert found == []
