"""The frame check (support/contract_schema.py) against docs/asyncapi.yaml: the frames the
reference backend sends pass, and each way a frame can leave the contract is named, with
the message it was taken for and the schema path in the document."""

from __future__ import annotations

import json
import time

import pytest

from support.contract_schema import CLIENT, ENVELOPE, JSONRPC, SERVER, ContractValidator, FrameCheck

RUN = "6f1c2a1e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"
TS = "2026-12-01T09:00:00.123Z"


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    return ContractValidator.load()


def server(type_: str, payload: dict, id_: str | None = "alice-laptop-chat-1") -> dict:
    return {"type": type_, "id": id_, "payload": payload, "ts": TS}


VALID_SERVER_FRAMES = [
    server("connected", {"user_id": RUN, "session_id": RUN, "connection_id": "c-1"}, None),
    server("agent_started", {"run_id": RUN, "agent": "assistant"}),
    server("agent_thinking", {"run_id": RUN, "agent": "assistant", "thought": "The user asks"}),
    server("tool_executing", {"run_id": RUN, "agent": "assistant", "tool": "knowledge_lookup", "input": "q"}),
    server("tool_completed", {"run_id": RUN, "agent": "assistant", "tool": "knowledge_lookup", "output": "o"}),
    server("agent_completed", {"run_id": RUN, "agent": "assistant", "tool": "knowledge_lookup", "answer": "a"}),
    server("permission_denied", {"tool": "web_search", "reason": "plan"}),
    server("pong", {}),
    server("fence", {}),
    server("reauthenticated", {"expires_at": TS}),
    server("thread_created", {"thread_id": RUN, "title": "Taxes", "scope": "user"}),
    server("thread", {"thread_id": RUN, "title": "Taxes", "scope": "session", "messages": [{"text": "hi", "ts": TS}]}),
    server("threads", {"threads": [{"thread_id": RUN, "title": "Taxes", "scope": "user"}]}),
    server("error", {"code": "invalid_json", "message": "the frame is not valid JSON"}, None),
    server("error", {"code": "unknown_type", "message": "unknown", "type": "dance"}),
    server("error", {"code": "rate_limited", "message": "wait", "retry_after_seconds": 3}),
    server("error", {"code": "usage_limit_reached", "message": "tomorrow", "limit": 5, "retry_after_seconds": 60}),
    server("error", {"code": "not_found", "message": "no such thread"}),
]


@pytest.mark.parametrize("frame", VALID_SERVER_FRAMES, ids=lambda f: f["type"] + " " + f["payload"].get("code", ""))
def test_the_frames_the_contract_describes_pass(contract, frame):
    assert contract.check(ENVELOPE, SERVER, json.dumps(frame)) is None


@pytest.mark.parametrize("frame", [
    {"type": "chat", "id": "a-1", "payload": {"text": "What is my balance?"}},
    {"type": "chat", "id": "a-1", "payload": {"text": "q", "agent": "planner", "tool": None}},
    {"type": "ping", "id": "a-2", "payload": {}},
    {"type": "fence", "id": "a-3"},
    {"type": "thread_create", "id": "a-4", "payload": {"title": "Taxes", "scope": "session"}},
    {"event": "chat", "request_id": "a-5", "data": {"text": "q"}},
])
def test_the_client_messages_of_the_contract_pass(contract, frame):
    assert contract.check(ENVELOPE, CLIENT, frame) is None


def test_json_rpc_requests_and_responses_pass(contract):
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "web_search",
                                                                          "arguments": {"query": "news"}}}
    assert contract.check(JSONRPC, CLIENT, call) is None
    assert contract.check(JSONRPC, CLIENT, [{"jsonrpc": "2.0", "method": "ping"}, call]) is None
    assert contract.check(JSONRPC, SERVER, {"jsonrpc": "2.0", "id": 1, "result": {"content": [
        {"type": "text", "text": "found"}]}}) is None
    assert contract.check(JSONRPC, SERVER, {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32000, "message": "Rate limited", "data": {"retry_after_seconds": 2}}}) is None


def test_an_undocumented_field_is_named_with_its_schema_path(contract):
    frame = server("connected", {"user_id": RUN, "session_id": RUN, "connection_id": "c-1", "debug": {}}, None)
    problem = contract.check(ENVELOPE, SERVER, json.dumps(frame))
    assert problem is not None
    assert "not the contract's 'connected' message" in problem
    assert "'debug' was unexpected" in problem
    assert "at payload:" in problem
    assert "docs/asyncapi.yaml#/components/messages/connected/payload/properties/payload/additionalProperties" in problem


def test_an_undocumented_frame_type_is_named(contract):
    problem = contract.check(ENVELOPE, SERVER, json.dumps(server("server_stats", {"sockets": 3}, None)))
    assert problem is not None and "type 'server_stats'" in problem and "agent_completed" in problem


def test_an_undocumented_error_code_is_named(contract):
    problem = contract.check(ENVELOPE, SERVER, server("error", {"code": "teapot", "message": "no"}))
    assert problem is not None and "code 'teapot'" in problem and "rate_limited" in problem


def test_a_wrong_type_is_named_with_where_it_is(contract):
    problem = contract.check(ENVELOPE, SERVER, server("error", {"code": "rate_limited", "message": "wait",
                                                                "retry_after_seconds": "soon"}))
    assert problem is not None
    assert "'error rate_limited'" in problem and "payload/retry_after_seconds" in problem
    assert "'soon' is not of type 'integer'" in problem
    assert "#/components/messages/errorRateLimited/payload/properties/payload/properties/retry_after_seconds/type" in problem


def test_a_missing_field_and_a_reply_without_its_id_are_named(contract):
    missing = contract.check(ENVELOPE, SERVER, server("agent_completed", {"run_id": RUN, "agent": "assistant",
                                                                          "tool": "knowledge_lookup"}))
    assert missing is not None and "'answer' is a required property" in missing
    unanswered = contract.check(ENVELOPE, SERVER, server("pong", {}, None))
    assert unanswered is not None and "at id: None is not of type 'string'" in unanswered


def test_a_frame_that_is_no_message_at_all_is_named(contract):
    assert "not JSON" in contract.check(ENVELOPE, SERVER, "{half")
    assert "a binary frame" in contract.check(ENVELOPE, SERVER, b"\x00\x01")
    assert "a JSON array" in contract.check(ENVELOPE, SERVER, "[1, 2]")
    assert "method 'weather/today'" in contract.check(JSONRPC, CLIENT, {"jsonrpc": "2.0", "id": 1,
                                                                       "method": "weather/today"})


def test_a_client_message_the_contract_does_not_describe_is_named(contract):
    problem = contract.check(ENVELOPE, CLIENT, {"type": "chat", "id": "a-1", "payload": {"text": "q", "urgent": True}})
    assert problem is not None and "'urgent' was unexpected" in problem
    legacy = contract.check(ENVELOPE, CLIENT, {"event": "subscribe", "request_id": "a-1", "data": {}})
    assert legacy is not None and "event 'subscribe'" in legacy


def test_frames_are_counted_per_message_type(contract):
    fresh = ContractValidator.load()
    for _ in range(3):
        fresh.check(ENVELOPE, SERVER, VALID_SERVER_FRAMES[0])
    fresh.check(ENVELOPE, SERVER, server("rate_limited", {}))
    fresh.check(JSONRPC, CLIENT, {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert fresh.counts[(ENVELOPE, SERVER, "connected")] == 3
    assert fresh.counts[(JSONRPC, CLIENT, "ping")] == 1
    assert fresh.summary().startswith("4 frames valid, 1 outside the contract (checked in ")
    assert "envelope from the server: connected 3" in fresh.summary()


def test_a_scenario_fails_naming_the_frame_the_socket_and_the_schema_path(contract):
    check = FrameCheck(contract, redact=lambda text: text.replace("secret-token", "<access token redacted>"))
    frame = json.dumps(server("connected", {"user_id": RUN, "session_id": RUN, "connection_id": "c-1",
                                            "token": "secret-token"}, None))
    assert check.inspect("Alice's laptop", "/ws", ENVELOPE, SERVER, frame) is not None
    with pytest.raises(AssertionError) as failure:
        check.raise_if_violated()
    message = str(failure.value)
    assert message.startswith("frame outside the contract: Alice's laptop received on /ws: ")
    assert "'token' was unexpected" in message and "schema path docs/asyncapi.yaml#/components/messages/connected" in message
    assert "secret-token" not in message and "<access token redacted>" in message
    check.raise_if_violated()  # each violation is reported once


def test_a_check_costs_microseconds(contract):
    frame = json.dumps(VALID_SERVER_FRAMES[5])
    started = time.perf_counter()
    for _ in range(2000):
        contract.check(ENVELOPE, SERVER, frame)
    per_frame = (time.perf_counter() - started) / 2000
    # Measured at about 35 us on the project's machines; the bound leaves room for a busy CI.
    assert per_frame < 500e-6, f"a frame check takes {per_frame * 1e6:.0f} us"
