"""What each scenario's Allure result shows: its requirements, their business value, its transcripts.

allure-behave ignores labels set at run time (``allure.dynamic.label``) because it builds a
result's labels from the scenario's tags when the scenario starts. So the requirement data
is added where every result passes on its way to disk: an ``allure_commons`` plugin whose
``report_result`` hook runs before the file writer's and completes the result from the
catalogue, keyed by the scenario's ``@req.<ID>`` tags.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import allure_commons
from allure_commons.model2 import Label, Link, Status, StatusDetails
from allure_commons.types import AttachmentType

from .catalogue import RequirementCatalogue, requirement_ids


class RequirementLabeller:
    """An allure_commons plugin that labels each result with its requirements."""

    def __init__(self, catalogue: RequirementCatalogue, link_pattern: str):
        self._catalogue = catalogue
        self._link_pattern = link_pattern
        self._scenario_failure: StatusDetails | None = None

    def fail_current_scenario(self, message: str) -> None:
        """Mark the result about to be written as failed (a failure found after its last step)."""
        self._scenario_failure = StatusDetails(message=message)

    @allure_commons.hookimpl(tryfirst=True)
    def report_result(self, result) -> None:
        tags = [label.value for label in result.labels if label.name == "tag"]
        known = [rid for rid in requirement_ids(tags) if rid in self._catalogue]
        behave_feature = next((l.value for l in result.labels if l.name == "feature"), None)
        result.labels = [l for l in result.labels if l.name != "feature"]
        if behave_feature:
            result.labels.append(Label("suite", behave_feature))
        notes = []
        for area in dict.fromkeys(self._catalogue[rid].area for rid in known):
            result.labels.append(Label("epic", f"{area.code}: {area.title}"))
        for rid in known:
            requirement = self._catalogue[rid]
            result.labels += [
                Label("feature", f"{rid}: {requirement.statement}"),
                Label("requirement", rid),
                Label("segment", requirement.segment),
                Label("goal", requirement.goal),
                Label("impact", requirement.impact),
            ]
            result.links.append(Link("tms", self._link_pattern.format(rid), rid))
            notes.append(f"**{rid}**: {requirement.statement}\n\n"
                         f"*Segment:* {requirement.segment}. *Goal:* {requirement.goal}. "
                         f"*Impact:* {requirement.impact}.")
        if notes:
            result.description = "\n\n".join(filter(None, [result.description, *notes]))
        if self._scenario_failure is not None:
            result.status = Status.FAILED
            result.statusDetails = self._scenario_failure
            self._scenario_failure = None


def attach_text(name: str, text: str) -> None:
    """Attach text to the current scenario's result (a no-op when no Allure formatter runs)."""
    allure_commons.plugin_manager.hook.attach_data(
        body=text, name=name, attachment_type=AttachmentType.TEXT, extension="txt")


def attach_allure_formatter(runner, config, directory: str, clear: bool = True) -> None:
    """Write Allure results to ``directory`` whatever ``-f`` formatters the user chose.

    Configured in behave.ini, the Allure formatter would be merged with every ``-f`` given
    on the command line (behave appends them), so ``behave -f progress`` would print two
    formats at once. Added here instead, it is always on; ``-D allure_results=off`` turns
    it off, and an Allure formatter already given with ``-f`` is left alone. A worker of a
    parallel run (parallel_run.py) passes ``clear=False``: its parent cleared the directory once.
    """
    from allure_behave.formatter import AllureFormatter
    from behave.formatter.base import StreamOpener

    if directory.lower() in ("", "off", "none") or any(
            isinstance(f, AllureFormatter) for f in runner.formatters):
        return
    if clear:
        clear_previous_results(Path(directory))
    runner.formatters.append(AllureFormatter(StreamOpener(filename=directory), config))


# What Allure, and a run of this suite, write into an allure-results directory.
RESULT_FILES = ("*-result.json", "*-container.json", "*-attachment.*", "environment.properties",
                "executor.json", "categories.json")


def clear_previous_results(directory: Path) -> None:
    """Remove the previous run's results, so the report shows this run and only this run.

    Only Allure's own files are removed; trends across runs live in the report's history
    file (see ``python -m support.build_report``), not in old results.
    """
    if not directory.is_dir():
        return
    for pattern in RESULT_FILES:
        for path in directory.glob(pattern):
            if path.is_file():
                path.unlink()


def allure_results_directory(runner) -> Path | None:
    """The directory the run's Allure formatter writes to, or None when none runs."""
    from allure_behave.formatter import AllureFormatter

    for formatter in getattr(runner, "formatters", None) or []:
        if isinstance(formatter, AllureFormatter):
            return Path(formatter.file_logger._report_dir)
    return None


def run_environment(harness, coverage=None) -> dict[str, str]:
    """What the report names as the run's environment: target, backend version, mode, suite."""
    from . import __version__

    environment = {}
    if harness is not None:
        targets = [t.strip() for t in (harness.settings.target_url or "").split(",") if t.strip()]
        environment["Target"] = ", ".join(_without_credentials(t) for t in targets) or "none"
        environment["Target source"] = (
            "started by this run" if harness.services is not None else "an existing deployment")
        documents = _config_documents(harness)
        environment["Backend version"] = _distinct(doc.get("version") for doc in documents)
        environment["Mode"] = _distinct(doc.get("mode") for doc in documents)
    environment["Suite version"] = __version__
    contract = getattr(harness, "contract", None)
    if contract is not None:
        # Per message type, how many frames of the run were validated against the contract's schemas.
        environment["Frames checked against " + contract.source] = contract.summary()
    if coverage is not None:
        # The whole table is under "Global Attachments" on the report's home page.
        environment["Requirements"] = coverage.short_summary()
    isolation = getattr(harness, "isolation", None)
    if isolation is not None:
        # Per operation of the contract, whether it ran under observation (ISO-08).
        environment["Isolation coverage by operation"] = isolation.summary()
    environment["Suite runtime"] = f"Python {platform.python_version()}, behave {_behave_version()}"
    if harness is not None:
        environment = {key: harness.redactor.redact(value) for key, value in environment.items()}
    return environment


def write_environment(directory: Path, environment: dict[str, str]) -> Path:
    """Write ``environment.properties``, which Allure shows on the report's home page."""
    lines = [f"{_escape_property(key, key=True)}={_escape_property(value)}"
             for key, value in environment.items()]
    path = Path(directory) / "environment.properties"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def finish_run(runner, harness, directory: Path | None = None) -> None:
    """The end of a run (from after_all): the coverage summary, the report's environment.

    ``harness`` is the run's Harness, or the facts of a parallel run merged over its workers
    (parallel_run.py's MergedRun, which tells its own environment and names ``directory``).
    Never raises: a failure here is reported and must not hide the run's own outcome.
    """
    from .report_coverage import Coverage
    from .launcher import say

    try:
        catalogue = harness.catalogue if harness is not None else None
        coverage = Coverage.from_behave(runner.features, catalogue)
        directory = directory or allure_results_directory(runner)
        if directory is not None:
            told = getattr(harness, "run_environment", None)
            write_environment(directory, told(coverage) if told else run_environment(harness, coverage))
            if getattr(harness, "isolation", None) is not None:
                harness.isolation.write(directory)
        for line in coverage.summary_lines():
            say(line)
        if getattr(harness, "isolation", None) is not None:
            say(f"isolation coverage by operation: {harness.isolation.summary()}")
        contract = getattr(harness, "contract", None)
        if contract is not None:
            say(f"frames checked against {contract.source}: {contract.summary()}")
    except Exception as error:  # noqa: BLE001 - the summary is a courtesy, the run decides
        say(f"the requirement coverage summary could not be written: {error!r}")


def _config_documents(harness) -> list[dict]:
    """The config document of every instance of the target the harness discovered."""
    instances = getattr(harness, "instances", None)
    if instances:
        return [getattr(instance, "config", None) or {} for instance in instances]
    try:
        return [harness.config_document or {}]
    except (AttributeError, IndexError):
        return []


def _distinct(values) -> str:
    """``development``, or ``development, production`` when instances differ."""
    shown = list(dict.fromkeys(str(value) for value in values if value not in (None, "")))
    return ", ".join(shown) or "not published"


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _escape_property(text: str, key: bool = False) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    if key:
        for char in " =:":
            text = text.replace(char, "\\" + char)
    return text


def _behave_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("behave")
    except PackageNotFoundError:
        return "unknown"



def install_sentence_help(registry_class) -> None:
    """Answer every sentence that matches no step with plain-words help (support/step_help.py).

    Wraps ``find_match`` of behave's step registry class, which both a real run and a dry run
    ask for each step (whichever registry instance behave's runner holds), so the help is
    printed in both, once per sentence, as soon as the sentence is met; behave still reports
    the step as undefined and counts it in its summary.
    """
    from .launcher import say
    from .step_help import SentenceHelp

    if getattr(registry_class, "sentence_help_installed", False):
        return
    find_match = registry_class.find_match
    explained: set[tuple[str, int]] = set()

    def find_match_or_explain(registry, step):
        match = find_match(registry, step)
        if match is None and (step.filename, step.line) not in explained:
            explained.add((step.filename, step.line))
            helper = SentenceHelp((keyword, definition.pattern) for keyword, definitions
                                  in registry.steps.items() for definition in definitions)
            sys.__stderr__.write("\n")
            say(f"{step.filename}:{step.line}: " + helper.explain(step.step_type, step.name).replace("\n", "\n[spec] "))
        return match

    registry_class.find_match = find_match_or_explain
    registry_class.sentence_help_installed = True
