"""The tools address: JSON-RPC 2.0 for integrations."""

from behave import given, then, when

from support.loop import harness_step
from support.phrases import json_rpc_request, register_phrases

register_phrases()


@given("{name:Name} connects {pronoun} tools client from {device:Device}")
@when("{name:Name} connects {pronoun} tools client from {device:Device}")
@harness_step
async def connects_tools_client(context, name, pronoun, device):
    actor = context.world.cast.actor(name)
    context.world.notes["tools"] = await actor.connect(device, endpoint="mcp", welcome=False)


def tools_client(context):
    return context.world.notes["tools"]


@when("{name:Name}'s tools client asks for the list of tools")
@harness_step
async def lists_tools(context, name):
    context.world.notes["rpc reply"] = await tools_client(context).call("tools/list", timeout=context.world.cast.timeout)


@then('the tools include "{tool}"')
@harness_step
async def tools_include(context, tool):
    reply = context.world.notes["rpc reply"]
    names = [t.get("name") for t in (reply.get("result") or {}).get("tools", [])]
    if tool not in names:
        raise AssertionError(f"the tools list {names}; expected it to include {tool!r}: {reply}")


@when('{name:Name}\'s tools client calls "{tool}" with the query "{query}"')
@harness_step
async def calls_tool(context, name, tool, query):
    context.world.notes["rpc reply"] = await tools_client(context).call(
        "tools/call", {"name": tool, "arguments": {"query": query}}, timeout=context.world.cast.timeout)


@then('the tool\'s answer quotes "{text}"')
@harness_step
async def answer_quotes(context, text):
    reply = context.world.notes["rpc reply"]
    content = (reply.get("result") or {}).get("content") or []
    if not any(text in str(part.get("text", "")) for part in content):
        raise AssertionError(f"the tool's answer does not quote {text!r}: {reply}")


@when("{name:Name}'s tools client sends {request:RpcRequest}")
@harness_step
async def sends_request(context, name, request):
    client = tools_client(context)
    since = await client.send(json_rpc_request(request, 7))
    context.world.notes["rpc frame"] = await client.wait_for(lambda f: f.json is not None, "a JSON-RPC reply",
                                                             context.world.cast.timeout, since)


@then("it receives the JSON-RPC error {code:d}")
@harness_step
async def receives_rpc_error(context, code):
    frame = context.world.notes["rpc frame"]
    reply = frame.json
    error = reply.get("error") if isinstance(reply, dict) else None
    if not error or error.get("code") != code or reply.get("jsonrpc") != "2.0":
        raise AssertionError(f"expected a JSON-RPC 2.0 error {code}; received {frame.text}")


@when("{name:Name}'s tools client sends a batch of {calls:d} calls and {notifications:d} notification")
@harness_step
async def sends_batch(context, name, calls, notifications):
    client = tools_client(context)
    batch = [{"jsonrpc": "2.0", "id": 100 + n, "method": "ping"} for n in range(calls)]
    batch += [{"jsonrpc": "2.0", "method": "ping"} for _ in range(notifications)]
    context.world.notes["batch ids"] = {100 + n for n in range(calls)}
    context.world.notes["sent at"] = await client.send(batch)


@then("it receives one reply holding exactly the answers to the {calls:d} calls")
@harness_step
async def batch_answered(context, calls):
    client = tools_client(context)
    since = context.world.notes["sent at"]
    reply = await client.wait_for(lambda f: isinstance(f.json, list), "the batch reply", context.world.cast.timeout, since)
    ids = {item.get("id") for item in reply.json}
    if ids != context.world.notes["batch ids"] or len(reply.json) != calls:
        raise AssertionError(f"the batch reply answers {sorted(ids, key=str)}; expected exactly "
                             f"{sorted(context.world.notes['batch ids'])}: {reply.text}")
    await client.call("ping", timeout=context.world.cast.timeout)  # anything the notification caused is before this
    extra = [f for f in client.received(since) if f is not reply and not (isinstance(f.json, dict) and f.json.get("id") is not None)]
    if extra:
        raise AssertionError(f"the notification in the batch was answered: {extra[0].text}")


@when("{name:Name}'s tools client sends a notification and then a ping")
@harness_step
async def notification_then_ping(context, name):
    client = tools_client(context)
    context.world.notes["sent at"] = await client.send({"jsonrpc": "2.0", "method": "ping"})
    context.world.notes["ping id"] = await client.send_call("ping")


@then("the first reply it receives answers the ping")
@harness_step
async def first_reply_is_ping(context):
    client = tools_client(context)
    first = await client.wait_for(lambda f: f.json is not None, "a reply", context.world.cast.timeout,
                                  context.world.notes["sent at"])
    if not isinstance(first.json, dict) or first.json.get("id") != context.world.notes["ping id"]:
        raise AssertionError(f"the notification was answered: {first.text}")
