"""The inventory of operations comes from the contract's documents, and every operation has its ISO-08 scenarios.

CI fails here when an operation is added to docs/asyncapi.yaml or docs/openapi.yaml without
a row in features/isolation/every_operation.feature that performs it under observation, or,
when it names a thread or a user, without a row that replays it as someone else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from behave.parser import parse_file

from conftest import REPO
from support.leaks import Party
from support.operations import (
    ASYNCAPI, EXERCISED, FAILING, NOT_COVERED, OPENAPI, SESSION, THREAD, USER, Inventory, IsolationCoverage,
    coverage_html, coverage_rows,
)

FEATURE = REPO / "features" / "isolation" / "every_operation.feature"
PERFORMS = "performs \""
REPLAYS = " replays "


def outline_rows(step_words: str, path: Path = FEATURE) -> list[dict[str, str]]:
    """The Examples rows of every outline of ``path`` with a step containing ``step_words``."""
    rows = []
    for scenario in parse_file(str(path)).scenarios:
        if not hasattr(scenario, "examples") or not any(step_words in step.name for step in scenario.steps):
            continue
        for examples in scenario.examples:
            rows.extend(dict(zip(examples.table.headings, row.cells)) for row in examples.table.rows)
    return rows


def uncovered(inventory: Inventory) -> list[str]:
    """Operations of ``inventory`` with no row that performs them under observation."""
    performed = {row["operation"] for row in outline_rows(PERFORMS)}
    return [operation for operation in inventory.ids() if operation not in performed]


def unreplayed(inventory: Inventory) -> list[str]:
    """Operations naming a thread or a user with no replay row by someone else (and, for a thread,
    by the owner's other device)."""
    rows = outline_rows(REPLAYS)
    missing = []
    for operation in inventory:
        mine = [row for row in rows if row["operation"] == operation.id]
        if THREAD in operation.resources:
            strangers = [row for row in mine if row.get("who", "Bob") != "Alice" and "thread" in row["thing"]]
            own_device = [row for row in mine if row.get("who") == "Alice" and row["thing"] == "thread kept to the laptop"]
            if not strangers or not own_device:
                missing.append(f"{operation.id} (thread)")
        if USER in operation.resources and operation.surface != "HTTP" and not any(
                row["thing"] == "user id" for row in mine):
            missing.append(f"{operation.id} (user id)")
        if operation.id == "reauthenticate" and not any(row["thing"] == "laptop's token" for row in mine):
            missing.append(f"{operation.id} (session)")
    return missing


def test_the_inventory_is_read_from_both_documents():
    inventory = Inventory.load()
    asyncapi, openapi = yaml.safe_load(ASYNCAPI.read_text()), yaml.safe_load(OPENAPI.read_text())
    http = {operation["operationId"] for item in openapi["paths"].values() for operation in item.values()
            if isinstance(operation, dict) and "operationId" in operation}
    assert http <= set(inventory.ids())
    assert {"chat", "threadRead", "threadList", "rpcToolsCall", "rpcBatch", "refresh", "logout"} <= set(inventory.ids())
    # Only what a client sends: no server frame (pong, agent_started, error ...) is an operation.
    assert not {"pong", "agentStarted", "connected", "errorNotFound", "rpcResult"} & set(inventory.ids())
    assert inventory["threadRead"].takes == (("thread_id", THREAD), ("user_id", USER))
    assert "error not_found" in inventory["threadRead"].returns
    assert inventory["refresh"].takes == (("refresh_token", SESSION),)
    assert inventory["reauthenticate"].resources == (SESSION, USER)
    assert inventory["changeEntitlements"].credential == "operator" and inventory["logout"].credential == "user"
    assert len(asyncapi["operations"]) and len(inventory) >= 25


def test_every_operation_of_the_contract_runs_under_observation_in_a_scenario():
    missing = uncovered(Inventory.load())
    assert not missing, (f"operations of the contract with no row in {FEATURE.relative_to(REPO)} that performs them "
                         f"while others listen (ISO-08): {', '.join(missing)}")


def test_every_request_naming_a_resource_is_replayed_by_someone_else():
    missing = unreplayed(Inventory.load())
    assert not missing, f"requests naming a resource with no replay row in {FEATURE.relative_to(REPO)}: {missing}"


def test_a_new_operation_without_a_scenario_fails_the_check(tmp_path):
    document = yaml.safe_load(ASYNCAPI.read_text())
    document["components"]["messages"]["threadDelete"] = {
        "name": "thread_delete", "payload": {"type": "object", "properties": {
            "type": {"const": "thread_delete"}, "payload": {"type": "object", "properties": {"thread_id": {}}}}}}
    document["channels"]["chat"]["messages"]["threadDelete"] = {"$ref": "#/components/messages/threadDelete"}
    document["operations"]["deleteThread"] = {"action": "receive", "channel": {"$ref": "#/channels/chat"},
                                              "messages": [{"$ref": "#/channels/chat/messages/threadDelete"}]}
    changed = tmp_path / "asyncapi.yaml"
    changed.write_text(yaml.safe_dump(document))
    inventory = Inventory.load(changed, OPENAPI)
    assert uncovered(inventory) == ["threadDelete"]
    assert "threadDelete (thread)" in unreplayed(inventory)
    # And the report lists it as not covered, whatever an older run wrote.
    summary, rows = coverage_rows(tmp_path, inventory)
    assert {row["operation"]: row["status"] for row in rows}["threadDelete"] == NOT_COVERED


def test_an_operation_counts_only_when_others_and_the_performers_other_devices_listen(tmp_path):
    coverage = IsolationCoverage(Inventory.load())
    laptop = Party("Alice", "a", "a-laptop", "laptop")
    phone, bob = Party("Alice", "a", "a-phone", "phone"), Party("Bob", "b", "b-phone", "phone")
    with pytest.raises(AssertionError, match="none of Alice's other devices"):
        coverage.observed("threadList", laptop, [bob], "s1")
    with pytest.raises(AssertionError, match="nobody else"):
        coverage.observed("threadList", laptop, [phone], "s1")
    with pytest.raises(AssertionError, match="no operation of the contract"):
        coverage.observed("threadDelete", laptop, [phone, bob], "s1")
    coverage.observed("threadList", laptop, [phone, bob], "lists her threads")
    coverage.settle(passed=True)
    coverage.observed("threadPost", laptop, [phone, bob], "writes")
    coverage.settle(passed=False)
    status = {row["operation"]: row["status"] for row in coverage.rows()}
    assert status["threadList"] == EXERCISED and status["threadPost"] == FAILING and status["chat"] == NOT_COVERED
    coverage.write(tmp_path)
    summary, rows = coverage_rows(tmp_path)
    assert summary.startswith("1 of ") and json.loads((tmp_path / "isolation-coverage.json").read_text())["summary"]
    page = coverage_html(summary, rows)
    assert page.index(">failing<") < page.index(">not covered<") < page.index(">exercised<")
