"""Every scenario names known requirements and a severity; the catalogue matches its source."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from behave.parser import parse_file

from support.catalogue import RequirementCatalogue, requirement_ids

REPO = Path(__file__).resolve().parent.parent
SEVERITIES = {"blocker", "critical", "normal", "minor", "trivial"}
SHARED_CATALOGUE = REPO.parent / "shared" / "requirements.md"


def all_scenarios():
    for path in sorted((REPO / "features").rglob("*.feature")):
        feature = parse_file(str(path))
        for scenario in feature.walk_scenarios(with_outlines=False):
            yield path.relative_to(REPO), scenario


def test_every_scenario_names_a_known_requirement_and_a_severity():
    catalogue = RequirementCatalogue.load()
    problems = []
    for path, scenario in all_scenarios():
        tags = [str(t) for t in scenario.effective_tags]
        ids = requirement_ids(tags)
        if not ids:
            problems.append(f"{path}: {scenario.name!r} has no @req.<ID> tag")
        problems += [f"{path}: {scenario.name!r} names unknown requirement {rid}" for rid in ids if rid not in catalogue]
        if not SEVERITIES & set(tags):
            problems.append(f"{path}: {scenario.name!r} has no severity tag ({', '.join(sorted(SEVERITIES))})")
    assert problems == []


def test_the_catalogue_is_complete_and_every_entry_has_its_business_value():
    catalogue = RequirementCatalogue.load()
    assert len(catalogue) >= 51
    for requirement in catalogue:
        assert requirement.statement and requirement.segment and requirement.goal and requirement.impact, requirement.id


@pytest.mark.skipif(not SHARED_CATALOGUE.exists(), reason="shared/requirements.md is not beside this checkout")
def test_the_catalogue_holds_every_requirement_of_its_source():
    source_ids = set(re.findall(r"^\| ([A-Z]+-\d\d) \|", SHARED_CATALOGUE.read_text(), re.M))
    ours = {requirement.id for requirement in RequirementCatalogue.load()}
    assert source_ids - ours == set(), "requirements missing from features/catalogue.toml"


def test_no_step_is_undefined():
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-m", "behave", "--dry-run", "--no-summary", "-f", "steps.missing"],
                               cwd=REPO, capture_output=True, text=True, timeout=60)
    undefined = [line for line in completed.stdout.splitlines() if line.startswith(("@given", "@when", "@then", "@step"))]
    assert undefined == [], completed.stdout
