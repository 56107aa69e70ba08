"""Requirement coverage: every requirement of the catalogue gets a status, none is dropped; the
summary prints at the end of every run, next to the environment the report will name."""

from __future__ import annotations

import json

from conftest import run_spec
from support.catalogue import RequirementCatalogue
from support.report_coverage import FAILING, NOT_COVERED, NOT_RUN, PASSING, Coverage, scenarios_on_disk
from support.redaction import Redactor
from support.report import clear_previous_results, run_environment, write_environment


def allure_result(directory, name, status, *requirements, history_id=None, stop=1):
    labels = [{"name": "requirement", "value": rid} for rid in requirements]
    labels += [{"name": "tag", "value": f"req.{rid}"} for rid in requirements]
    result = {"name": name, "status": status, "labels": labels, "stop": stop,
              "historyId": history_id or name, "uuid": f"{name}-{stop}"}
    (directory / f"{name.replace(' ', '-')}-{stop}-result.json").write_text(json.dumps(result))


def test_every_requirement_gets_a_status_and_none_is_dropped(tmp_path):
    catalogue = RequirementCatalogue.load()
    allure_result(tmp_path, "Alice connects", "passed", "AUTH-01")
    allure_result(tmp_path, "Bob sees nothing", "failed", "ISO-01")
    allure_result(tmp_path, "Five people", "passed", "ISO-01", "ISO-02")
    allure_result(tmp_path, "Subprotocol", "skipped", "AUTH-02")
    written = {"AUTH-01": ["Alice connects"], "ISO-01": ["Bob sees nothing", "Five people"],
               "ISO-02": ["Five people"], "AUTH-02": ["Subprotocol"], "AUTH-03": ["No token"]}
    coverage = Coverage.from_allure_results(tmp_path, catalogue, written)
    status = {row.requirement.id: row.status for row in coverage.rows}

    assert list(status) == [requirement.id for requirement in catalogue]
    assert status["AUTH-01"] == PASSING and status["ISO-02"] == PASSING
    assert status["ISO-01"] == FAILING  # one failed scenario fails the requirement
    assert status["AUTH-02"] == NOT_RUN and status["AUTH-03"] == NOT_RUN  # skipped; written but not run
    assert status["ISO-04"] == NOT_COVERED and status["RES-05"] == NOT_COVERED
    assert coverage.counts() == {PASSING: 2, FAILING: 1, NOT_RUN: 2, NOT_COVERED: len(catalogue) - 5}

    table = coverage.as_dict()["requirements"]
    assert {row["id"] for row in table} == {requirement.id for requirement in catalogue}
    for text in (coverage.to_csv(), coverage.to_html(), coverage.to_json()):
        assert all(requirement.id in text for requirement in catalogue)
    assert coverage.to_csv().splitlines()[1].startswith("failing,\"ISO-01: ")  # failures first
    assert "no scenario yet" in coverage.to_csv()
    assert "<tr id='ISO-04'>" in coverage.to_html()  # requirement-coverage.html#ISO-04 links to the row
    summary = "\n".join(coverage.summary_lines())
    assert "2 passing, 1 failing, 2 not run" in summary and "ISO-01: Bob sees nothing" in summary
    assert "ISO-04" in summary and "not covered" in summary


def test_the_latest_result_of_a_scenario_counts(tmp_path):
    allure_result(tmp_path, "Bob sees nothing", "failed", "ISO-01", history_id="h1", stop=1)
    allure_result(tmp_path, "Bob sees nothing", "passed", "ISO-01", history_id="h1", stop=2)
    coverage = Coverage.from_allure_results(tmp_path, written={})
    row = next(row for row in coverage.rows if row.requirement.id == "ISO-01")
    assert row.status == PASSING and row.scenario_summary == "1 passed"


def test_the_requirements_written_in_features_are_all_in_the_catalogue():
    catalogue = RequirementCatalogue.load()
    written = scenarios_on_disk()
    assert written and set(written) <= {requirement.id for requirement in catalogue}
    assert "ISO-01" in written and "Bob sees nothing of Alice's conversation" in written["ISO-01"]


def test_a_run_prints_the_coverage_summary_and_names_its_environment(planted_server, tmp_path):
    server = planted_server("none")
    run = run_spec("features/authentication/handshake.feature", env=server.target, tmp_path=tmp_path)
    assert run.returncode == 0, run.output
    summary = run.output[run.output.index("requirement coverage: "):]
    assert ", 0 failing, " in summary.splitlines()[0], summary
    assert "passing      AUTH-01" in summary
    assert "not run" in summary and "ISO-01" in summary  # written, but left out of this run
    uncovered = [r.id for r in RequirementCatalogue.load() if r.id not in scenarios_on_disk()]
    assert all(rid in summary for rid in uncovered) and ("not covered" in summary) == bool(uncovered)
    environment = (run.allure_dir / "environment.properties").read_text()
    assert f"Target={server.url}\n" in environment
    assert "Backend\\ version=0.1.0\n" in environment and "Mode=development\n" in environment
    assert "Suite\\ version=0.1.0\n" in environment and "Requirements=" in environment
    assert server.secret not in environment


def test_a_run_starts_from_empty_results_and_leaves_other_files_alone(tmp_path):
    for name in ("old-result.json", "old-container.json", "old-attachment.txt", "environment.properties",
                 "notes.md"):
        (tmp_path / name).write_text("x")
    clear_previous_results(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.md"]


def test_the_environment_names_every_instance_and_no_credential():
    class Instance:
        def __init__(self, mode):
            self.config = {"version": "2.0.1", "mode": mode}

    class Harness:
        settings = type("Settings", (), {"target_url": "https://ops:pa55word-pa55word@a.example,https://b.example"})
        services = None
        instances = [Instance("development"), Instance("production")]
        redactor = Redactor()

    Harness.redactor.register("pa55word-pa55word")
    environment = run_environment(Harness())
    assert environment["Target"] == "https://a.example, https://b.example"
    assert environment["Target source"] == "an existing deployment"
    assert environment["Backend version"] == "2.0.1" and environment["Mode"] == "development, production"
    assert environment["Suite version"] == "0.1.0"
    assert "pa55word" not in str(environment)


def test_environment_values_are_written_as_java_properties(tmp_path):
    path = write_environment(tmp_path, {"Backend version": "1.2", "Note": "a\\b\nc"})
    assert path.read_text() == "Backend\\ version=1.2\nNote=a\\\\b\\nc\n"
