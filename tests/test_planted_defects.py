"""Every check of the specification can fail: each test plants one defect in a tiny broken
server (tests/planted/server.py) and watches the scenario that covers it fail, for the
right reason. The control run against the same server without a defect passes.

Scenarios are named by requirement (their @req tag) and example row, and a check by its step
function (steps/*.py), never by a title or a sentence, so rewording a feature breaks nothing.
"""

import pytest

from conftest import run_spec

ISOLATION = ("features/isolation/between_users.feature",)
HANDSHAKE = ("features/authentication/handshake.feature",)
GOLDEN_PATH = ("features/agents/golden_path.feature",)


def test_the_control_server_passes_the_scenarios_used_below(planted_server, tmp_path):
    server = planted_server("none")
    run = run_spec(*ISOLATION, *HANDSHAKE, env=server.target, tmp_path=tmp_path)
    assert run.returncode == 0, run.output
    golden = run_spec(*GOLDEN_PATH, env=server.target, tmp_path=tmp_path)
    # Without a database the record check cannot run; every step before it must pass.
    assert [(failed.requirements, failed.check) for failed in golden.failed_checks()] == [
        (("AGENT-01",), "agent_steps.run_recorded")], golden.output


@pytest.mark.planted(requirement="META-01", defect="leak")
def test_a_leak_to_another_user_fails_the_isolation_scenarios(planted_server, tmp_path):
    server = planted_server("leak")
    run = run_spec(*ISOLATION, env=server.target, tmp_path=tmp_path)
    assert run.returncode != 0
    failures = {requirement: failed.message for failed in run.failed_checks() for requirement in failed.requirements}
    two_users = failures["ISO-01"]
    assert "isolation broken: Bob's phone received Alice's laptop's private data" in two_users
    assert '"type": "agent_' in two_users, "the message must show the offending frame"
    assert "ISO-02" in failures, "five people asking at the same time: no scenario of ISO-02 failed"


@pytest.mark.planted(requirement="AGENT-01", defect="drop-event")
def test_a_missing_agent_event_fails_the_golden_path(planted_server, tmp_path):
    server = planted_server("drop-event")
    run = run_spec(*GOLDEN_PATH, env=server.target, tmp_path=tmp_path)
    failed = run.failed_checks()
    assert failed and failed[0].check == "agent_steps.events_in_order", run.output
    assert ("received the events agent_started, agent_thinking, tool_executing, agent_completed; "
            "expected agent_started, agent_thinking, tool_executing, tool_completed, agent_completed") in failed[0].message


@pytest.mark.planted(requirement="AUTH-04", defect="accept-any-token")
def test_accepting_a_bad_token_fails_the_authentication_scenarios(planted_server, tmp_path):
    server = planted_server("accept-any-token")
    run = run_spec(*HANDSHAKE, env=server.target, tmp_path=tmp_path)
    failed = {check.scenario for check in run.failed_checks()}
    for kind in ("a tampered token", "a token signed with the wrong key", "a token from the wrong issuer",
                 "a token for the wrong audience", "a token for an unknown user"):
        assert run.scenario_by_row("AUTH-04", kind) in failed, \
            f"{kind} was accepted but no scenario failed: {[(s.requirements, s.row) for s in failed]}"
    # The expired token of the handshake (AUTH-05's other scenario is in token_lifetime.feature).
    assert any("AUTH-05" in scenario.requirements for scenario in failed)
    # A token-less handshake is still refused by this server, so that scenario still passes.
    assert not any("AUTH-03" in scenario.requirements for scenario in failed)
    messages = " ".join(check.message for check in run.failed_checks())
    assert "was accepted" in messages and "expected an HTTP 401 or 403 refusal" in messages


@pytest.mark.planted(requirement="MSG-01", defect="undocumented-field")
def test_an_undocumented_field_fails_the_scenario_naming_the_frame_and_schema_path(planted_server, tmp_path):
    server = planted_server("undocumented-field")
    run = run_spec(*ISOLATION, "--tags=req.ISO-01", env=server.target, tmp_path=tmp_path)
    assert run.returncode != 0, run.output
    # Every step passes: only the frame check, at the scenario's end, sees the extra field.
    assert "frame outside the contract: Alice's laptop received on /ws: not the contract's 'connected' message" \
        in run.output, run.output
    assert "'debug' was unexpected" in run.output
    assert "docs/asyncapi.yaml#/components/messages/connected/payload/properties/payload/additionalProperties" \
        in run.output
    assert "frame outside the contract: Bob's phone received on /ws" in run.output


@pytest.mark.planted(requirement="MSG-01", defect="undocumented-frame")
def test_an_undocumented_frame_type_fails_the_scenario(planted_server, tmp_path):
    server = planted_server("undocumented-frame")
    run = run_spec(*ISOLATION, "--tags=req.ISO-01", env=server.target, tmp_path=tmp_path)
    assert run.returncode != 0, run.output
    assert ("frame outside the contract: Alice's laptop received on /ws: no message from the server on the "
            "envelope endpoints has type 'server_stats'") in run.output, run.output
    assert '"type": "server_stats"' in run.output, "the message must show the offending frame"
