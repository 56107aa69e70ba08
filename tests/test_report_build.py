"""The release report: one command turns a real run's Allure results into a single HTML file that
opens from disk, grouped by area and requirement, with the coverage of every requirement, the
evidence of each failure, the run's environment, and history across builds."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys

import pytest
from behave.parser import parse_file

from conftest import REPO, run_spec
from support.build_report import BuildError, build, embedded_files
from support.catalogue import RequirementCatalogue, requirement_ids
from support.operations import Inventory
from support.report_coverage import scenarios_on_disk

pytestmark = pytest.mark.skipif(shutil.which("npm") is None and not (REPO / "node_modules").exists(),
                                reason="the report needs Node.js and npm (Allure 3 comes from the npm registry)")

# Against the planted leak, the isolation scenarios fail and the handshake scenarios pass.
FEATURES = ("features/authentication/handshake.feature", "features/isolation/between_users.feature")


def expected_elsewhere() -> tuple[list[str], list[str]]:
    """Requirements written only in features this run leaves out, and those no feature names."""
    written = scenarios_on_disk()
    in_run = set()
    for path in FEATURES:
        for scenario in parse_file(str(REPO / path)).walk_scenarios(with_outlines=False):
            in_run.update(requirement_ids(str(tag) for tag in scenario.effective_tags))
    return ([rid for rid in written if rid not in in_run],
            [r.id for r in RequirementCatalogue.load() if r.id not in written])


def embedded_json(files: dict[str, bytes], prefix: str) -> list[dict]:
    return [json.loads(data) for path, data in files.items() if path.startswith(prefix)]


def test_a_failing_run_becomes_a_report_that_explains_the_failure(planted_server, tmp_path):
    server = planted_server("leak")  # another user's agent events reach every socket
    run = run_spec(*FEATURES, env=server.target, tmp_path=tmp_path)
    assert run.returncode != 0, run.output

    report = build(run.allure_dir, tmp_path / "report", tmp_path / "history.jsonl")

    # One self-contained file, with the coverage table next to it; nothing loaded from a server.
    assert report.seconds < 60
    names = {path.name for path in report.index.parent.iterdir()}
    assert {"index.html", "requirement-coverage.html", "requirement-coverage.csv"} <= names
    index = report.index.read_text(encoding="utf-8")
    assert "googletagmanager" not in index
    assert not re.findall(r'(?:src|href)="https?://', index), "the report must not load anything from a server"

    # Every requirement of the catalogue, with its status, the uncovered ones included.
    catalogue = RequirementCatalogue.load()
    table = json.loads((report.index.parent / "requirement-coverage.json").read_text())
    status = {row["id"]: row["status"] for row in table["requirements"]}
    assert list(status) == [requirement.id for requirement in catalogue]
    assert status["ISO-01"] == "failing" and status["ISO-02"] == "failing"
    assert status["AUTH-01"] == "passing" and status["AUTH-04"] == "passing"
    not_run, not_covered = expected_elsewhere()
    assert not_run and {status[rid] for rid in not_run} == {"not run"}  # written, but left out of this run
    assert {status[rid] for rid in not_covered} <= {"not covered"}
    assert list(status.values()).count("not covered") == len(not_covered)

    files = embedded_files(report.index)
    (table_in_report,) = [data.decode() for data in files.values() if data.startswith(b"Status,Requirement,")]
    assert all(requirement.id in table_in_report for requirement in catalogue)
    shown = {row["Requirement"].split(":")[0]: row["Status"] for row in csv.DictReader(io.StringIO(table_in_report))}
    assert shown == status

    # Beside it, isolation coverage by operation (ISO-08): every operation of the contract, and this
    # run (which leaves out features/isolation/every_operation.feature) exercised none of them.
    assert {"isolation-coverage.html", "isolation-coverage.csv"} <= names
    (operations_in_report,) = [data.decode() for data in files.values() if data.startswith(b"Status,Operation,")]
    operations = {row["Operation"]: row["Status"] for row in csv.DictReader(io.StringIO(operations_in_report))}
    assert list(operations) == Inventory.load().ids() and set(operations.values()) == {"not covered"}

    # The failed scenario: its requirement, business value, severity, and the evidence.
    results = {result["name"]: result for result in embedded_json(files, "data/test-results/")}
    failed = results["Bob sees nothing of Alice's conversation"]
    assert failed["status"] == "failed" and "isolation broken" in failed["error"]["message"]
    labels = {(label["name"], label["value"]) for label in failed["labels"]}
    assert ("requirement", "ISO-01") in labels and ("severity", "critical") in labels
    assert ("epic", "ISO: Isolation between users") in labels
    assert ("goal", "no user ever receives another user's data, under any load") in labels
    assert "<strong>ISO-01</strong>: When User A sends" in failed["descriptionHtml"]
    assert "<em>Goal:</em> no user ever receives" in failed["descriptionHtml"]
    assert [link["name"] for link in failed["links"] if link["type"] == "tms"] == ["ISO-01"]

    attachments = {path: data.decode(errors="replace") for path, data in files.items()
                   if path.startswith("data/attachments/")}
    transcripts = [text for text in attachments.values() if text.startswith("Transcript of Bob's phone")]
    assert transcripts, "the failed scenario must carry Bob's socket transcript"
    assert " <- " in transcripts[0] and " -> " in transcripts[0] and "code=1000" in transcripts[0]
    assert any("claims=" in text and "'sub'" in text for text in attachments.values())
    violations = [text for text in attachments.values() if text.startswith("isolation broken: Bob's phone")]
    assert violations and all("Alice's laptop" in text and 'frame: {"type": ' in text for text in violations)

    # The environment the report names: target, backend version, mode, suite version.
    environment = {item["name"]: item["values"][0] for item in json.loads(files["widgets/allure_environment.json"])}
    assert environment["Target"] == server.url and environment["Backend version"] == "0.1.0"
    assert environment["Mode"] == "development" and environment["Suite version"] == "0.1.0"


def test_every_build_adds_to_the_history(planted_server, tmp_path):
    server = planted_server("none")
    run = run_spec(FEATURES[0], env=server.target, tmp_path=tmp_path)
    history = tmp_path / "history.jsonl"
    build(run.allure_dir, tmp_path / "report", history)
    second = build(run.allure_dir, tmp_path / "report", history)
    assert len(history.read_text().splitlines()) == 2
    files = embedded_files(second.index)
    assert any(path.startswith("data/history/") for path in files), "the report shows no history"


def test_the_command_says_what_to_do_without_results(tmp_path):
    with pytest.raises(BuildError, match="run the specification first"):
        build(tmp_path, tmp_path / "report", tmp_path / "history.jsonl")
    completed = subprocess.run([sys.executable, "-m", "support.build_report", "--results", str(tmp_path),
                                "--output", str(tmp_path / "report")], cwd=REPO, capture_output=True, text=True)
    assert completed.returncode == 2 and "run the specification first" in completed.stderr
