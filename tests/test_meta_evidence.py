"""META-02's evidence reaches the release report: planted-defect results, per area."""

from __future__ import annotations

import json
import uuid

from support.catalogue import RequirementCatalogue
from support.meta_evidence import area_summary, evidence_csv, meta_outcomes, read_proofs
from support.report_coverage import FAILED, PASSED


def write_result(directory, requirement, defect, status):
    labels = [{"name": "requirement", "value": "META-02"}, {"name": "planted_requirement", "value": requirement},
              {"name": "planted_defect", "value": defect}]
    (directory / f"{uuid.uuid4()}-result.json").write_text(json.dumps({"name": defect, "status": status,
                                                                       "labels": labels}))


def test_every_area_proven_makes_meta_02_pass(tmp_path):
    catalogue = RequirementCatalogue.load()
    areas = list(dict.fromkeys(r.area.code for r in catalogue if r.area.code != "META"))
    for area in areas:
        write_result(tmp_path, f"{area}-01", f"defect-of-{area.lower()}", "passed")
    outcomes = meta_outcomes(read_proofs(tmp_path), catalogue)
    assert {o.outcome for o in outcomes} == {PASSED} and len(outcomes) == len(areas)
    assert f"{len(areas)} of {len(areas)} areas proven" in area_summary(read_proofs(tmp_path), catalogue)


def test_an_area_without_a_planted_defect_or_a_failed_proof_fails_meta_02(tmp_path):
    write_result(tmp_path, "AUTH-05", "expiry-never-armed", "passed")
    write_result(tmp_path, "ISO-01", "leak", "failed")
    outcomes = meta_outcomes(read_proofs(tmp_path))
    failed = [o.name for o in outcomes if o.outcome == FAILED]
    assert "ISO: leak planted, ISO-01 fails" in failed
    assert "LIFE: no planted defect shows its scenarios can fail" in failed
    assert "AUTH: expiry-never-armed planted, AUTH-05 fails" not in failed
    assert "ISO,ISO-01,leak,NO" in evidence_csv(read_proofs(tmp_path)).replace("\r", "")


def test_no_planted_results_leaves_meta_02_to_say_so(tmp_path):
    assert meta_outcomes(read_proofs(tmp_path)) == []
    assert "run `python -m pytest tests/test_planted_*.py`" in area_summary([])


def test_the_release_report_shows_meta_02_from_the_planted_results(tmp_path):
    from support.build_report import build

    results, planted = tmp_path / "results", tmp_path / "planted"
    results.mkdir(), planted.mkdir()
    (results / f"{uuid.uuid4()}-result.json").write_text(json.dumps({
        "uuid": str(uuid.uuid4()), "name": "Bob sees nothing of Alice's conversation", "status": "passed",
        "start": 1, "stop": 2, "labels": [{"name": "requirement", "value": "ISO-01"}]}))
    write_result(planted, "AUTH-05", "expiry-never-armed", "passed")
    report = build(results, tmp_path / "report", tmp_path / "history.jsonl", planted)
    table = json.loads((report.index.parent / "requirement-coverage.json").read_text())
    meta = next(row for row in table["requirements"] if row["id"] == "META-02")
    assert meta["status"] == "failing", meta  # one area proven, the others not
    evidence = (report.index.parent / "planted-defects-by-area.csv").read_text()
    assert "AUTH,AUTH-05,expiry-never-armed,yes" in evidence.replace("\r", "")
    without = build(results, tmp_path / "report-without", tmp_path / "history.jsonl")
    table = json.loads((without.index.parent / "requirement-coverage.json").read_text())
    assert next(row for row in table["requirements"] if row["id"] == "META-02")["status"] == "not covered"


def test_benchmarks_decide_perf_in_the_report_and_a_quick_run_verifies_nothing():
    from support.benchmarks import performance_outcomes
    from support.report_coverage import SKIPPED

    results = {"handshake_latency": {"status": "failing", "requirements": ["PERF-02", "AUTH-08"], "quick": False},
               "harness_vs_bare": {"status": "passing", "requirements": ["PERF-01", "ISO-04"], "quick": True},
               "fanout_cpu": {"status": "not run", "requirements": ["PERF-01"]}}
    outcomes = performance_outcomes(results)
    assert set(outcomes) == {"PERF-01", "PERF-02"}, "only PERF requirements are decided by benchmarks"
    assert [o.outcome for o in outcomes["PERF-02"]] == [FAILED]
    assert {o.outcome for o in outcomes["PERF-01"]} == {SKIPPED}
