"""docs/steps.md lists every step phrase with an example, and is up to date with steps/."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO
from support.steps_doc import Step, read_catalog, read_usage, render


def test_docs_steps_md_is_up_to_date():
    completed = subprocess.run([sys.executable, "-m", "support.steps_doc", "--check"], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr + "\n(run `python -m support.steps_doc` and commit docs/steps.md)"


def test_every_phrase_of_the_steps_catalog_is_listed_with_an_example():
    catalog = subprocess.run([sys.executable, "-m", "behave", "--steps-catalog", "--no-summary"], cwd=REPO,
                             capture_output=True, text=True, timeout=120).stdout
    phrases = read_catalog(catalog)
    document = (REPO / "docs" / "steps.md").read_text(encoding="utf-8")
    assert len(phrases) >= 10
    missing = [f"{step.keyword} {step.phrase}" for step in phrases
               if f"### {step.keyword} {step.phrase}\n" not in document
               and f"- `{step.keyword} {step.phrase}`\n" not in document]
    assert missing == []


def test_the_catalog_and_usage_outputs_are_read_as_behave_prints_them():
    catalog = ("USING RUNNER: behave.runner:Runner\n"
               "Given {name:Name} is connected from {devices:Devices}\n"
               "    Open one socket per device,\n    each on its own session.\n\n"
               "Then {name:Name}'s {device} receives nothing\n\n"
               "Then nobody listens\n")
    usage = ("@given('{name:Name} is connected from {devices:Devices}')  # steps/connection_steps.py:16\n"
             "  And Alice is connected from her laptop                # features/agents/golden_path.feature:9\n"
             "  Given Bob is connected from his phone                 # features/isolation/x.feature:3\n\n"
             "@then('{name:Name}'s {device} receives nothing')  # steps/agent_steps.py:42\n"
             "  Then Alice's phone receives nothing              # features/sessions/several_devices.feature:21\n")
    steps = read_catalog(catalog)
    assert [(s.keyword, s.phrase) for s in steps] == [
        ("Given", "{name:Name} is connected from {devices:Devices}"),
        ("Then", "{name:Name}'s {device} receives nothing"), ("Then", "nobody listens")]
    assert steps[0].explanation == ["Open one socket per device,", "each on its own session."]
    examples = read_usage(usage)
    assert examples[("Given", "{name:Name} is connected from {devices:Devices}")] == (
        "Given Alice is connected from her laptop", "features/agents/golden_path.feature")
    assert examples[("Then", "{name:Name}'s {device} receives nothing")][0] == "Then Alice's phone receives nothing"
    text = render([Step("Then", "nobody listens")])
    assert "### Then nobody listens" in text and "Not used by any scenario yet." in text
