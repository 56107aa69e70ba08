"""Every check of the outages and the capacity (RES-01, RES-02, RES-05) can fail.

The scenarios cut the database or Redis link of the embedded default's controllable
instance, or fill it (@identity_store.controllable, @redis.controllable, @capacity.small),
so, like AUTH-09's in tests/test_planted_lifecycle_defects.py, every case runs behave on the
embedded default with the launcher swapped: each embedded instance runs
`python -m tests.planted.lifecycle_defects --defect NAME`. A case's scenarios are those of
its requirement (an outline's example named by its Examples row); they must fail in the
step that checks what the defect breaks, saying so, while all of them pass against
`--defect none` (the control of that requirement).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from test_planted_contract_defects import Case, Fails, control_key
from test_planted_contract_defects import test_a_planted_defect_fails_the_scenario_that_covers_it as check_case
from test_planted_lifecycle_defects import LifecycleLab, params

OUTAGES = "features/resilience/outages.feature"
CAPACITY = "features/resilience/capacity.feature"

EMBEDDED_CASES = [
    # RES-01: each operation cut short in the middle, and a backend that leaves half of it behind.
    Case("RES-01", "sign-up-user-first", OUTAGES, [
        Fails("all_or_nothing", "without any session: half-written")]),
    Case("RES-01", "refresh-outside-transaction", OUTAGES, [
        Fails("succeeds_again", "refresh token no longer works", row="refreshes her laptop's session")]),
    Case("RES-01", "thread-message-announced-first", OUTAGES, [
        Fails("all_or_nothing", "received it in the thread 1 time(s) and the service stored it 0 time(s)",
              row="writes in her thread")]),
    Case("RES-01", "run-left-running", OUTAGES, [
        Fails("all_or_nothing", "is still recorded 'running'", row="asks her agent a question")]),
    # RES-02: the limit while Redis is out, the subscription after it, a sign-out during it.
    Case("RES-02", "limit-fails-open-without-redis", OUTAGES, [
        Fails("refused_while_down", "was accepted")]),
    Case("RES-02", "no-resubscribe", OUTAGES, [
        Fails("delivers_again", "received nothing through the event fan-out within 5 s of Redis coming back"),
        Fails("delivers_again", "received nothing through the event fan-out within 5 s of Redis coming back")]),
    Case("RES-02", "sign-out-unannounced-without-redis", OUTAGES, [
        Fails("every_tab_disconnected", "is still connected; expected to be disconnected with code 4009")]),
    Case("RES-02", "standing-notices-unheard", OUTAGES, [
        Fails("token_refused_on", "was accepted (subprotocol None); expected an HTTP 401 refusal")]),
    # RES-05: a full instance.
    Case("RES-05", "capacity-not-enforced", CAPACITY, [
        Fails("refused_as", "was accepted; expected an HTTP 503 'at_capacity' refusal")]),
]


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    """Starts the cases this session selected (all, or those picked with -k), and their controls, all at once."""
    chosen = [item.callspec.params["case"] for item in request.session.items
              if item.module.__name__ == __name__ and "case" in getattr(item, "callspec", {}).params]
    lab = LifecycleLab([], chosen, tmp_path_factory.mktemp("planted-outage-defects"))
    yield lab
    lab.close()


@pytest.mark.parametrize("case", params(EMBEDDED_CASES))
def test_a_planted_outage_defect_fails_the_scenario_that_covers_it(case, lab):
    # Its own control (the embedded default, unpatched), under the key the check looks up.
    own = SimpleNamespace(controls={control_key(case): lab.embedded_controls[(case.feature, case.selection)]},
                          planted=lab.planted)
    check_case(case, own)
