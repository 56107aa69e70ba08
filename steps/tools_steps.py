"""The tools address: JSON-RPC 2.0 for integrations."""

from behave import given, then, when

from support.loop import harness_step
from support.questions import (
    check_batch_answered, check_first_reply_answers_ping, check_rpc_error, check_tool_answer_quotes,
    check_tools_include,
)


@given("{name:Name} connects {pronoun:Pronoun} tools client from {device:Device}")
@given("{name:Name} has connected {pronoun:Pronoun} tools client from {device:Device}")
@when("{name:Name} connects {pronoun:Pronoun} tools client from {device:Device}")
@harness_step
async def connects_tools_client(context, name, pronoun, device):
    pronoun.check_is(name, "tools client")
    await context.world.cast.actor(name).connect_tools_client(device)


@when("{name:Name}'s tools client asks for the list of tools")
@harness_step
async def lists_tools(context, name):
    await context.world.cast.actor(name).tools.call("tools/list")


@then('the tools include "{tool}"')
@then('{name:Name}\'s tools include "{tool}"')
@harness_step
async def tools_include(context, tool, name=None):
    check_tools_include(context.world.cast.tools_client(name), tool)


@when('{name:Name}\'s tools client calls "{tool}" with the query "{query:Quoted}"')
@harness_step
async def calls_tool(context, name, tool, query):
    await context.world.cast.actor(name).tools.call_tool(tool, {"query": query})


@then('the tool\'s answer quotes "{text:Quoted}"')
@harness_step
async def answer_quotes(context, text):
    check_tool_answer_quotes(context.world.cast.tools_client(None), text)


@when("{name:Name}'s tools client sends {request:RpcRequest}")
@harness_step
async def sends_request(context, name, request):
    await context.world.cast.actor(name).tools.send_request(request)


@then("it {receives:Receives} the JSON-RPC error {code:d}")
@harness_step
async def receives_rpc_error(context, receives, code):
    check_rpc_error(context.world.cast.tools_client(None).last_reply, code)


@when("{name:Name}'s tools client sends a batch of {calls:Calls} and {notifications:Notifications}")
@harness_step
async def sends_batch(context, name, calls, notifications):
    await context.world.cast.actor(name).tools.send_batch(calls, notifications)


@then("it {receives:Receives} one reply holding exactly the answers to the {calls:Calls}")
@harness_step
async def batch_answered(context, receives, calls):
    await check_batch_answered(context.world.cast.tools_client(None), calls)


@when("{name:Name}'s tools client sends a notification and then a ping")
@harness_step
async def notification_then_ping(context, name):
    await context.world.cast.actor(name).tools.send_notification_then_ping()


@then("the first reply it {receives:Receives} answers the ping")
@harness_step
async def first_reply_is_ping(context, receives):
    await check_first_reply_answers_ping(context.world.cast.tools_client(None))
