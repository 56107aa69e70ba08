"""Requirement coverage: every requirement of the catalogue, and whether a run verified it.

A requirement is

- **failing** when any scenario naming it failed,
- **passing** when at least one scenario naming it passed and none failed,
- **not run** when scenarios name it but none of them ran (left out by a tag or a path, or
  skipped because the target offers no suitable instance),
- **not covered** when no scenario in ``features/`` names it yet.

Every requirement of the catalogue gets a row, so one with no scenario is shown as not
covered and never silently dropped. The same table is built from a finished behave run (the
summary printed at the end of every run) and from an ``allure-results`` directory (the table
in the release report); see ``python -m support.build_report``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import DEFAULT_PATH, Requirement, RequirementCatalogue, requirement_ids

FEATURES = DEFAULT_PATH.parent

PASSING, FAILING, NOT_RUN, NOT_COVERED = "passing", "failing", "not run", "not covered"
STATUSES = (FAILING, PASSING, NOT_RUN, NOT_COVERED)

# What a scenario's outcome is called here, from behave's and Allure's names for it.
PASSED, FAILED, SKIPPED = "passed", "failed", "not run"
_BEHAVE_OUTCOMES = {"passed": PASSED, "xpassed": PASSED, "skipped": SKIPPED, "untested": SKIPPED,
                    "xfailed": SKIPPED, "unknown": SKIPPED, "executing": SKIPPED}
_ALLURE_OUTCOMES = {"passed": PASSED, "failed": FAILED, "broken": FAILED, "skipped": SKIPPED,
                    "unknown": SKIPPED}


@dataclass(frozen=True)
class ScenarioOutcome:
    name: str
    outcome: str  # PASSED, FAILED or SKIPPED


@dataclass
class RequirementRow:
    requirement: Requirement
    scenarios: list[ScenarioOutcome] = field(default_factory=list)

    @property
    def status(self) -> str:
        outcomes = {scenario.outcome for scenario in self.scenarios}
        if FAILED in outcomes:
            return FAILING
        if PASSED in outcomes:
            return PASSING
        return NOT_RUN if self.scenarios else NOT_COVERED

    def count(self, outcome: str) -> int:
        return sum(1 for scenario in self.scenarios if scenario.outcome == outcome)

    @property
    def scenario_summary(self) -> str:
        """For example ``3 passed, 1 failed`` or ``no scenario yet``."""
        if not self.scenarios:
            return "no scenario yet"
        parts = [f"{self.count(outcome)} {outcome}" for outcome in (FAILED, PASSED, SKIPPED) if self.count(outcome)]
        return ", ".join(parts)


def scenarios_on_disk(features: Path = FEATURES) -> dict[str, list[str]]:
    """requirement id -> names of the scenarios in ``features/`` that name it (outlines expanded)."""
    from behave.parser import parse_file

    found: dict[str, list[str]] = {}
    for path in sorted(Path(features).rglob("*.feature")):
        feature = parse_file(str(path))
        for scenario in feature.walk_scenarios(with_outlines=False):
            for rid in requirement_ids(str(tag) for tag in scenario.effective_tags):
                found.setdefault(rid, []).append(scenario.name.strip())
    return found


class Coverage:
    """One row per requirement of the catalogue, in catalogue order."""

    def __init__(self, catalogue: RequirementCatalogue, ran: dict[str, list[ScenarioOutcome]],
                 written: dict[str, list[str]]):
        self.rows: list[RequirementRow] = []
        for requirement in catalogue:
            outcomes = list(ran.get(requirement.id, []))
            seen = {outcome.name for outcome in outcomes}
            outcomes += [ScenarioOutcome(name, SKIPPED) for name in written.get(requirement.id, [])
                         if name not in seen]
            self.rows.append(RequirementRow(requirement, outcomes))

    # -- sources -------------------------------------------------------------------------

    @classmethod
    def from_behave(cls, features, catalogue: RequirementCatalogue | None = None,
                    written: dict[str, list[str]] | None = None) -> "Coverage":
        """From the features of a finished behave run (``context._runner.features``)."""
        catalogue = catalogue or RequirementCatalogue.load()
        ran: dict[str, list[ScenarioOutcome]] = {}
        for feature in features:
            for scenario in feature.walk_scenarios(with_outlines=False):
                status = scenario.status
                name = getattr(status, "name", str(status))
                outcome = FAILED if status.has_failed() else _BEHAVE_OUTCOMES.get(name, SKIPPED)
                for rid in dict.fromkeys(requirement_ids(str(tag) for tag in scenario.effective_tags)):
                    ran.setdefault(rid, []).append(ScenarioOutcome(scenario.name.strip(), outcome))
        return cls(catalogue, ran, scenarios_on_disk() if written is None else written)

    @classmethod
    def from_allure_results(cls, directory: Path, catalogue: RequirementCatalogue | None = None,
                            written: dict[str, list[str]] | None = None) -> "Coverage":
        """From an allure-results directory: its latest result of each scenario, by requirement label."""
        catalogue = catalogue or RequirementCatalogue.load()
        latest: dict[str, dict] = {}
        for path in sorted(Path(directory).glob("*-result.json")):
            try:
                result = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            key = result.get("historyId") or result.get("uuid") or path.name
            if key not in latest or result.get("stop", 0) >= latest[key].get("stop", 0):
                latest[key] = result
        ran: dict[str, list[ScenarioOutcome]] = {}
        for result in latest.values():
            outcome = _ALLURE_OUTCOMES.get(result.get("status"), SKIPPED)
            labels = result.get("labels", [])
            ids = [label["value"] for label in labels if label.get("name") == "requirement"]
            ids = ids or requirement_ids(label["value"] for label in labels if label.get("name") == "tag")
            for rid in dict.fromkeys(ids):
                ran.setdefault(rid, []).append(ScenarioOutcome(result.get("name", "?").strip(), outcome))
        return cls(catalogue, ran, scenarios_on_disk() if written is None else written)

    def add_outcomes(self, requirement_id: str, outcomes: list[ScenarioOutcome]) -> None:
        """Outcomes from another source than the scenarios (META-02's planted-defect tests)."""
        for row in self.rows:
            if row.requirement.id == requirement_id:
                row.scenarios.extend(outcomes)

    # -- the table -----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for row in self.rows if row.status == status) for status in STATUSES}

    def short_summary(self) -> str:
        """For example ``12 passing, 1 failing, 38 not covered`` (not run only when there are some)."""
        counts = self.counts()
        shown = [PASSING, FAILING] + [NOT_RUN] * bool(counts[NOT_RUN]) + [NOT_COVERED]
        return ", ".join(f"{counts[status]} {status}" for status in shown)

    def headline(self) -> str:
        counts = self.counts()
        return (f"requirement coverage: {counts[PASSING]} passing, {counts[FAILING]} failing, "
                f"{counts[NOT_RUN]} not run, {counts[NOT_COVERED]} not covered by any scenario "
                f"(of {len(self.rows)} in features/catalogue.toml)")

    def summary_lines(self, width: int = 100) -> list[str]:
        """The console summary: the headline, then the requirement ids under each status."""
        lines = [self.headline()]
        for status in STATUSES:
            rows = [row for row in self.rows if row.status == status]
            if not rows:
                continue
            label = f"  {status:<13}"
            if status == FAILING:
                for row in rows:
                    failed = [s.name for s in row.scenarios if s.outcome == FAILED]
                    more = f"; and {len(failed) - 2} more" if len(failed) > 3 else ""
                    shown = failed[:2] if more else failed
                    lines.append(f"{label}{row.requirement.id}: {'; '.join(shown)}{more}")
                    label = " " * len(label)
                continue
            ids = " ".join(row.requirement.id for row in rows)
            wrapped = textwrap.wrap(ids, width=max(20, width - len(label))) or [""]
            lines.append(label + wrapped[0])
            lines += [" " * len(label) + rest for rest in wrapped[1:]]
        return lines

    def as_dict(self) -> dict:
        return {
            "counts": self.counts(),
            "requirements": [{
                "id": row.requirement.id,
                "area": row.requirement.area.code,
                "area_title": row.requirement.area.title,
                "status": row.status,
                "statement": row.requirement.statement,
                "segment": row.requirement.segment,
                "goal": row.requirement.goal,
                "impact": row.requirement.impact,
                "scenarios": [{"name": s.name, "outcome": s.outcome} for s in row.scenarios],
            } for row in self.rows],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n"

    def by_status(self) -> list[RequirementRow]:
        """Failing first, then passing, not run and not covered; catalogue order within each."""
        return sorted(self.rows, key=lambda row: STATUSES.index(row.status))

    def to_csv(self) -> str:
        """The table as CSV; the release report shows it as a table on its home page."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["Status", "Requirement", "Scenarios", "Business goal"])
        for row in self.by_status():
            requirement = row.requirement
            writer.writerow([row.status, f"{requirement.id}: {requirement.statement}", row.scenario_summary,
                             requirement.goal])
        return out.getvalue()

    def to_html(self, title: str = "Requirement coverage") -> str:
        """A standalone page: one row per requirement, its business value, its scenarios."""
        e = html.escape
        colours = {PASSING: "#1a7f37", FAILING: "#cf222e", NOT_RUN: "#9a6700", NOT_COVERED: "#57606a"}
        counts = self.counts()
        body = []
        for row in self.by_status():
            requirement = row.requirement
            scenarios = "".join(f"<li class='{e(s.outcome.replace(' ', '-'))}'>{e(s.outcome)}: {e(s.name)}</li>"
                                for s in row.scenarios) or "<li>no scenario names this requirement yet</li>"
            body.append(
                f"<tr id='{e(requirement.id)}'><td><b>{e(requirement.id)}</b><br>"
                f"<span class='area'>{e(requirement.area.code)}: {e(requirement.area.title)}</span></td>"
                f"<td class='status' style='color:{colours[row.status]}'>{e(row.status)}</td>"
                f"<td>{e(requirement.statement)}<div class='value'><i>Segment:</i> {e(requirement.segment)}. "
                f"<i>Goal:</i> {e(requirement.goal)}. <i>Impact:</i> {e(requirement.impact)}.</div></td>"
                f"<td><ul>{scenarios}</ul></td></tr>")
        summary = ", ".join(f"{counts[status]} {status}" for status in STATUSES)
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #1f2328; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #d0d7de; padding: .4em .6em; text-align: left; vertical-align: top; }}
td.status {{ font-weight: bold; white-space: nowrap; }}
.area, .value {{ color: #57606a; font-size: .9em; }}
ul {{ margin: 0; padding-left: 1.1em; }} li.failed {{ color: #cf222e; }}
tr:target {{ background: #fff8c5; }}
</style></head><body>
<h1>{e(title)}</h1>
<p>{e(summary)} &mdash; {len(self.rows)} requirements in features/catalogue.toml.</p>
<table><thead><tr><th>Requirement</th><th>Status</th><th>Statement and business value</th><th>Scenarios</th></tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""

    def write(self, directory: Path, stem: str = "requirement-coverage") -> list[Path]:
        """Write the table as HTML, CSV and JSON into ``directory``; return the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix, text in ((".html", self.to_html()), (".csv", self.to_csv()), (".json", self.to_json())):
            path = directory / f"{stem}{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
        return written
