"""Every check of resuming (RES-03, docs/contract.md section 6a) can fail.

The same proof as tests/test_planted_lifecycle_defects.py, with its lab and its check, for
the resume defects of tests/planted/lifecycle_defects.py: each case plants one defect into
the reference backend, runs every RES-03 scenario of features/resilience/resume.feature
against two instances of it, and asserts that the scenarios covering the defect fail in the
step that checks it, saying what went wrong, while every RES-03 scenario passes against
`--defect none` (the control). Scenarios are named by requirement, example row and step
function, never by title.

The lab's instances keep the reference backend's default retention (100 events), not the
embedded default's 8: the scenario beyond the retention asks as many questions as the
published retention takes to outrun, whatever it is.
"""

from __future__ import annotations

import pytest

from test_planted_contract_defects import Case, Fails
from test_planted_lifecycle_defects import LifecycleLab, params
from test_planted_contract_defects import test_a_planted_defect_fails_the_scenario_that_covers_it as check_case

RESUME = "features/resilience/resume.feature"
PEOPLE = ("another customer", "another device of her own")

CASES = [
    # On the same instance and on the other one: the rest of the answer, short of its first event.
    Case("RES-03", "replay-skips-first-missed", RESUME, [
        Fails("rest_of_answer", "received tool_executing, tool_completed, agent_completed; expected the rest, "
                                "agent_thinking, tool_executing, tool_completed, agent_completed")] * 2,
        instances=2),
    # The event seen last, again, at the seam.
    Case("RES-03", "replay-repeats-last-seen", RESUME, [
        Fails("rest_of_answer", "received agent_started, agent_thinking, tool_executing, tool_completed, "
                                "agent_completed; expected the rest")] * 2,
        instances=2),
    Case("RES-03", "no-gap-signal", RESUME, [
        Fails("told_of_gap", 'more than the service keeps, and after reconnecting was answered {"type":"agent_')],
        instances=2),
    # Asked for "not found", it answers as if the place were the socket's own: a gap.
    Case("RES-03", "foreign-id-accepted", RESUME, [
        Fails("told_nothing_to_pick_up", 'left off and was answered {"type":"resume_gap"', row=who) for who in PEOPLE],
        instances=2),
    # Her events replayed to him (or to her other device): the leak detector sees them in the
    # step that connects, whose fence waits for whatever the service sent in answer.
    Case("RES-03", "foreign-stream-served", RESUME, [
        Fails("connects_where_other_left_off", f"isolation broken: {who}'s laptop received Alice's phone's private data",
              row=row) for row, who in (("another customer", "Bob"), ("another device of her own", "Alice"))],
        instances=2),
]


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    """Starts the cases this session selected (all, or those picked with -k), all at once."""
    chosen = [item.callspec.params["case"] for item in request.session.items
              if item.module.__name__ == __name__ and "case" in getattr(item, "callspec", {}).params]
    lab = LifecycleLab(chosen, [], tmp_path_factory.mktemp("planted-resume-defects"))
    yield lab
    lab.close()


@pytest.mark.parametrize("case", params(CASES))
def test_a_planted_resume_defect_fails_the_scenario_that_covers_it(case, lab):
    check_case(case, lab)
