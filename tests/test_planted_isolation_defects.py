"""Every ISO-08 check can fail: a list that ignores the owner, a write kept to one device fanned out
to all of them, and a refused write whose message was stored anyway.

The same proof as tests/test_planted_lifecycle_defects.py, with the cases, lab and check of
tests/test_planted_contract_defects.py: each case plants one defect of
tests/planted/lifecycle_defects.py into the reference backend, runs the ISO-08 scenarios of
features/isolation/every_operation.feature against it, and asserts that the example of the
operation it breaks fails in the step that checks it, saying what went wrong, while every
scenario passes against `--defect none`. Scenarios are named by requirement tag and by the
cells of their Examples row, never by title.
"""

from __future__ import annotations

import re

import pytest

from test_planted_contract_defects import Case, Fails, Lab
from test_planted_contract_defects import test_a_planted_defect_fails_the_scenario_that_covers_it as check_case

EVERY_OPERATION = "features/isolation/every_operation.feature"
# The lab's backends have no operator credential, so the operator's own example is left out.
WITHOUT_OPERATOR = "not operator"

CASES = [
    # Everyone's threads for all their devices reach Alice's laptop in her list: Bob's, and those of
    # the earlier scenarios' people (the detector knows them by their markers alone).
    Case("ISO-08", "thread-list-ignores-owner", EVERY_OPERATION, [
        Fails("performs_operation", re.compile(r"isolation broken: Alice's laptop received (Bob's|user [0-9a-f-]+'s) "),
              row=("threadList", "lists her threads"))], tags=WITHOUT_OPERATOR),
    # The laptop's own thread's message reaches Alice's phone.
    Case("ISO-08", "scoped-write-fanned-out-per-user", EVERY_OPERATION, [
        Fails("performs_operation", "isolation broken: Alice's phone received Alice's laptop's", row=("threadPost", "writes in the thread kept to that device"))],
        tags=WITHOUT_OPERATOR),
    # Refused, yet stored: the owner finds the replayed text in her thread.
    Case("ISO-08", "refused-write-kept", EVERY_OPERATION, [
        Fails("holds_nothing_written", f"holds what {who}'s {device} wrote although the write was refused",
              row=(who, device, "threadPost"))
        for who, device in (("Bob", "laptop"), ("Bob", "phone"), ("Alice", "phone"))], tags=WITHOUT_OPERATOR),
]


class IsolationLab(Lab):
    """The contract lab, starting tests.planted.lifecycle_defects (where the ISO-08 defects live)."""

    defects_module = "tests.planted.lifecycle_defects"


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    """Starts the cases this session selected (all, or those picked with -k), all at once."""
    chosen = [item.callspec.params["case"] for item in request.session.items
              if item.module.__name__ == __name__ and "case" in getattr(item, "callspec", {}).params]
    lab = IsolationLab(chosen, tmp_path_factory.mktemp("planted-isolation-defects"))
    yield lab
    lab.close()


@pytest.mark.parametrize("case", [pytest.param(case, id=str(case)) for case in CASES])
def test_a_planted_isolation_defect_fails_the_scenario_that_covers_it(case, lab):
    check_case(case, lab)
