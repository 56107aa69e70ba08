"""Plans, roles and usage: what each plan allows, tools, and the daily allowance."""

import asyncio

from behave import given, then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import check_execution_recorded, check_nothing_ran, check_permission_denied, check_published

register_phrases()


@when("{name:Name} changes to the {plan} plan")
@harness_step
async def changes_plan(context, name, plan):
    actor = context.world.cast.actor(name)
    device = await actor.sign_in(next(iter(actor.devices), "laptop"))
    await context.world.cast.api.change_plan(device.tokens.access_token, plan.lower())
    actor.plan = plan.lower()


@when('{name:Name} asks {pronoun} agent "{question:Quoted}" using the tool "{tool}"')
@harness_step
async def asks_with_tool(context, name, pronoun, question, tool):
    await context.world.cast.actor(name).ask(None, question, extra={"tool": tool})


@when('{name:Name} asks the {agent} "{question:Quoted}" using the tool "{tool}"')
@harness_step
async def asks_agent_with_tool(context, name, agent, question, tool):
    await context.world.cast.actor(name).ask(None, question, extra={"agent": agent, "tool": tool})


@then("{name:Name} is refused the tool because of {pronoun} {reason}")
@harness_step
async def refused_tool(context, name, pronoun, reason):
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    frame = await request.device.connection.wait_for(
        lambda f: f.id == request.id and f.type in ("permission_denied", "agent_completed", "error"),
        "the answer to the tool request", context.world.cast.timeout, request.sent_index)
    check_permission_denied(frame, name, reason)


@then("nothing ran for {name:Name}'s question")
@harness_step
async def nothing_ran(context, name):
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    await request.device.connection.fence(context.world.cast.timeout, context.harness.settings.backstop_seconds)
    rows = await context.harness.database.executions_for(actor.user_id, request.id)
    check_nothing_ran(request, rows)


@then("{name:Name}'s run is recorded as completed for {pronoun} {device:DeviceName}, by the {agent} with the tool {tool}")
@harness_step
async def recorded_with_agent_and_tool(context, name, pronoun, device, agent, tool):
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    rows = await context.harness.database.executions_for(actor.user_id, request.id)
    check_execution_recorded(request, actor.device(device), rows, agent=agent, tool=tool)


@given("{name:Name} may run the agent {count:d} times a day")
@harness_step
async def daily_allowance(context, name, count):
    check_published(context.world.cast.instance.config, "agent runs per day", count,
                    context.world.cast.actor(name).plan)


@when("{name:Name} asks {pronoun} agent {count:d} questions, one after another")
@harness_step
async def asks_one_after_another(context, name, pronoun, count):
    actor = context.world.cast.actor(name)
    for number in range(1, count + 1):
        request = await actor.ask(None, f"Question number {number}")
        await actor.answer_to(request)


@when("each of {name:Name}'s devices asks the assistant, the researcher and the planner at the same time")
@harness_step
async def each_device_asks_three(context, name):
    actor = context.world.cast.actor(name)
    asks = [actor.ask(device, f"What should the {agent} do next on my {device}?", extra={"agent": agent})
            for device in actor.devices for agent in ("assistant", "researcher", "planner")]
    await asyncio.gather(*asks)
