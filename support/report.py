"""What each scenario's Allure result shows: its requirements, their business value, its transcripts.

allure-behave ignores labels set at run time (``allure.dynamic.label``) because it builds a
result's labels from the scenario's tags when the scenario starts. So the requirement data
is added where every result passes on its way to disk: an ``allure_commons`` plugin whose
``report_result`` hook runs before the file writer's and completes the result from the
catalogue, keyed by the scenario's ``@req.<ID>`` tags.
"""

from __future__ import annotations

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


def attach_allure_formatter(runner, config, directory: str) -> None:
    """Write Allure results to ``directory`` whatever ``-f`` formatters the user chose.

    Configured in behave.ini, the Allure formatter would be merged with every ``-f`` given
    on the command line (behave appends them), so ``behave -f progress`` would print two
    formats at once. Added here instead, it is always on; ``-D allure_results=off`` turns
    it off, and an Allure formatter already given with ``-f`` is left alone.
    """
    from allure_behave.formatter import AllureFormatter
    from behave.formatter.base import StreamOpener

    if directory.lower() in ("", "off", "none") or any(
            isinstance(f, AllureFormatter) for f in runner.formatters):
        return
    runner.formatters.append(AllureFormatter(StreamOpener(filename=directory), config))
