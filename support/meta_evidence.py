"""META-02 in the release report: the planted-defect tests' results, per area of the catalogue.

tests/meta_evidence.py (a pytest plugin) writes each planted-defect test as an Allure result
into ``planted-results/``, labelled ``requirement=META-02`` with the area and requirement it
proves. This module reads them back for the report: one evidence row per planted defect, and
META-02's outcome per area. An area of the catalogue with no planted defect counts as a
failure of META-02, because the suite has then not shown it can fail there.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .catalogue import RequirementCatalogue
from .report_coverage import FAILED, PASSED, SKIPPED, ScenarioOutcome

DIRECTORY = Path(__file__).resolve().parent.parent / "planted-results"
_OUTCOMES = {"passed": PASSED, "failed": FAILED, "broken": FAILED}


@dataclass(frozen=True)
class PlantedProof:
    area: str
    requirement: str
    defect: str
    outcome: str  # PASSED: the covering scenarios failed as they must, the rest passed

    @property
    def name(self) -> str:
        return f"{self.area}: {self.defect} planted, {self.requirement} fails"


# The labels tests/meta_evidence.py puts on each planted-defect result.
REQUIREMENT_LABEL, DEFECT_LABEL = "planted_requirement", "planted_defect"


def _planted_results(directory: Path):
    """(path, result) of every planted-defect result in ``directory``."""
    for path in sorted(Path(directory).glob("*-result.json")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if any(label.get("name") == REQUIREMENT_LABEL for label in result.get("labels", [])):
            yield path, result


def read_proofs(directory: Path = DIRECTORY) -> list[PlantedProof]:
    """Every planted-defect result in ``directory`` (none if the planted tests have not run)."""
    proofs = []
    for _, result in _planted_results(directory):
        labels = {label.get("name"): label.get("value") for label in result.get("labels", [])}
        requirement = labels[REQUIREMENT_LABEL]
        proofs.append(PlantedProof(requirement.split("-")[0], requirement, labels.get(DEFECT_LABEL, "?"),
                                   _OUTCOMES.get(result.get("status"), SKIPPED)))
    return sorted(proofs, key=lambda p: (p.area, p.requirement, p.defect))


def stage_proofs(directory: Path, staging: Path) -> Path:
    """Copy the planted-defect results of ``directory`` and their attachments into ``staging``
    (other tests' results there stay out of the report)."""
    staging.mkdir(parents=True, exist_ok=True)
    for path, result in _planted_results(directory):
        (staging / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        for attachment in result.get("attachments", []):
            source = Path(directory) / attachment.get("source", "")
            if source.is_file():
                (staging / source.name).write_bytes(source.read_bytes())
    return staging


def meta_outcomes(proofs: list[PlantedProof], catalogue: RequirementCatalogue | None = None) -> list[ScenarioOutcome]:
    """META-02's outcomes: one per planted defect, and a failure for each area with none.

    Empty when no planted test ran, so META-02 then reads "not covered" rather than failing.
    """
    if not proofs:
        return []
    catalogue = catalogue or RequirementCatalogue.load()
    outcomes = [ScenarioOutcome(proof.name, proof.outcome) for proof in proofs]
    proven = {proof.area for proof in proofs}
    for area in dict.fromkeys(requirement.area.code for requirement in catalogue):
        if area not in proven and area != "META":
            outcomes.append(ScenarioOutcome(f"{area}: no planted defect shows its scenarios can fail", FAILED))
    return outcomes


def evidence_csv(proofs: list[PlantedProof]) -> str:
    """The evidence table of the report: area, requirement, defect planted, outcome."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["area", "requirement", "defect planted", "covering scenarios failed, the rest passed"])
    for proof in proofs:
        writer.writerow([proof.area, proof.requirement, proof.defect, "yes" if proof.outcome == PASSED else "NO"])
    return out.getvalue()


def area_summary(proofs: list[PlantedProof], catalogue: RequirementCatalogue | None = None) -> str:
    """One line: how many areas have a planted defect whose scenarios failed as they must."""
    if not proofs:
        return "no planted-defect results (run `python -m pytest tests/test_planted_*.py` before the build)"
    catalogue = catalogue or RequirementCatalogue.load()
    areas = [a for a in dict.fromkeys(r.area.code for r in catalogue) if a != "META"]
    proven = {p.area for p in proofs if p.outcome == PASSED}
    missing = [a for a in areas if a not in proven]
    return (f"{len(proofs)} planted defects, {len(areas) - len(missing)} of {len(areas)} areas proven"
            + (f"; not proven: {', '.join(missing)}" if missing else ""))
