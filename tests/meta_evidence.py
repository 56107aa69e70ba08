"""META-02's evidence: every planted-defect test, written as an Allure result for the release report.

A pytest plugin (pytest.ini loads it with ``-p meta_evidence``). Each test of a
``tests/test_planted_*.py`` file shows, for one defect planted into a target, that the
scenarios covering its requirement fail and the rest pass. allure-pytest writes each as an
Allure result into ``planted-results/``, labelled ``requirement=META-02`` (so the report's
requirement coverage counts it under META-02), with the area and requirement it proves as
story and labels; ``python -m support.build_report`` merges them into the report beside the
specification's own results (support/meta_evidence.py).

A test names what it proves by its ``case`` parameter (``requirement`` and ``defect``) or by
``@pytest.mark.planted(requirement=..., defect=...)`` (which also marks a planted-defect test
in another file, such as the Locust profile's planted leak). Only a session that runs planted tests
replaces the evidence; results of other tests are not kept.
"""

from __future__ import annotations

import json

import allure
import pytest

from support.meta_evidence import DEFECT_LABEL, DIRECTORY as EVIDENCE, REQUIREMENT_LABEL

PLANTED_FILES = "test_planted_"


def planted(item) -> tuple[str, str] | None:
    """(requirement, defect) a planted-defect test proves, or None for any other test."""
    marker = item.get_closest_marker("planted")
    if marker is not None:
        return marker.kwargs["requirement"], marker.kwargs.get("defect", item.name)
    if not item.path.name.startswith(PLANTED_FILES):
        return None
    case = getattr(item, "callspec", None) and item.callspec.params.get("case")
    if case is not None and getattr(case, "requirement", None):
        return case.requirement, getattr(case, "defect", str(case))
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "planted(requirement, defect): the requirement a planted-defect test proves "
                                       "its scenarios can fail for (META-02 evidence)")
    if not config.option.allure_report_dir and not config.option.collectonly:
        config.option.allure_report_dir = str(EVIDENCE)


def pytest_collection_modifyitems(session, config, items):
    session.runs_planted_tests = any(planted(item) for item in items)
    if config.option.allure_report_dir == str(EVIDENCE) and session.runs_planted_tests:
        for path in EVIDENCE.glob("*"):  # this session's planted tests are the evidence now
            if path.is_file():
                path.unlink()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Label the result while the test runs (allure-pytest names the result at the call)."""
    proves = planted(item)
    if proves is not None:
        requirement, defect = proves
        area = requirement.split("-")[0]
        allure.dynamic.label("requirement", "META-02")
        allure.dynamic.epic("META")
        allure.dynamic.feature("META-02")
        allure.dynamic.story(area)
        allure.dynamic.label(REQUIREMENT_LABEL, requirement)
        allure.dynamic.label(DEFECT_LABEL, defect)
        allure.dynamic.title(f"{area}: with '{defect}' planted, the scenarios of {requirement} fail and the rest pass")
    yield


def pytest_sessionfinish(session):
    """Keep only the planted-defect tests' results (and what they refer to) as evidence."""
    if not EVIDENCE.is_dir() or not getattr(session, "runs_planted_tests", False):
        return  # another session's evidence is left as it is (the build reads only planted results)
    kept_files: set[str] = set()
    for path in EVIDENCE.glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        if any(label.get("name") == REQUIREMENT_LABEL for label in result.get("labels", [])):
            kept_files.add(path.name)
            kept_files.update(a["source"] for a in _attachments(result))
        else:
            path.unlink()
    for path in EVIDENCE.iterdir():
        if path.name not in kept_files and not path.name.endswith(("-result.json", ".tmp")):
            path.unlink()


def _attachments(node: dict):
    yield from node.get("attachments", [])
    for step in node.get("steps", []):
        yield from _attachments(step)
