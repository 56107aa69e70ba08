"""Plans, roles and usage: what each plan allows, tools, and the daily allowance."""

import asyncio

from behave import given, then, when

from support.loop import harness_step
from support.questions import (
    check_execution_recorded, check_http_refusal, check_nothing_ran, check_permission_denied, check_published,
    tool_answer,
)


@given("{name:Name} has changed to the {plan:Plan} plan")
@when("{name:Name} changes to the {plan:Plan} plan")
@harness_step
async def changes_plan(context, name, plan):
    cast = context.world.cast
    await cast.actor(name).change_plan(cast.plan(plan))


@when("{name:Name} tries to move {self_:Herself} to the {plan:Plan} plan")
@harness_step
async def tries_self_service_plan(context, name, self_, plan):
    cast = context.world.cast
    await cast.actor(name).try_self_service_plan(cast.plan(plan))


@when("{name:Name} reads the service's security health without an operator's credential")
@harness_step
async def reads_health_as_stranger(context, name):
    await context.world.cast.actor(name).read_health_as_stranger()


@then('{name:Name} {tense:Tense} refused with HTTP {status:d} "{code:Code}"')
@then("{name:Name} {tense:Tense} refused with HTTP {status:d}")
@harness_step
async def refused_over_http(context, name, tense, status, code=None):
    check_http_refusal(context.world.cast.actor(name).http_answer, f"{name}'s request", status, code)


@when('{name:Name} asks {pronoun:Pronoun} agent "{question:Quoted}" using the tool "{tool}"')
@harness_step
async def asks_with_tool(context, name, pronoun, question, tool):
    pronoun.check_is(name, "agent")
    await context.world.cast.actor(name).ask(None, question, extra={"tool": tool})


@when('{name:Name} asks the {agent:Agent} "{question:Quoted}" using the tool "{tool}"')
@harness_step
async def asks_agent_with_tool(context, name, agent, question, tool):
    cast = context.world.cast
    await cast.actor(name).ask(None, question, extra={"agent": cast.agent(agent), "tool": tool})


@then("{name:Name} {tense:Tense} refused the tool because of {pronoun:Pronoun} {reason:ToolRefusal}")
@harness_step
async def refused_tool(context, name, tense, pronoun, reason):
    pronoun.check_is(name, reason)
    actor = context.world.cast.actor(name)
    check_permission_denied(await tool_answer(actor.last_request(), context.world.cast.timeout), name, reason)


@then("nothing ran for {name:Name}'s question")
@harness_step
async def nothing_ran(context, name):
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    await context.world.cast.fence_one(request.device.open_connection(), context.world.backstop)
    rows = await context.harness.database.executions_for(actor.user_id, request.id)
    check_nothing_ran(request, rows)


@then("{name:Name}'s run {tense:Tense} recorded as completed for {pronoun:Pronoun} {device:DeviceName}, "
      "by the {agent:Agent} with the tool {tool}")
@harness_step
async def recorded_with_agent_and_tool(context, name, tense, pronoun, device, agent, tool):
    pronoun.check_is(name, device)
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    rows = await context.harness.database.executions_for(actor.user_id, request.id)
    check_execution_recorded(request, actor.device(device), rows, agent=agent, tool=tool)


@given("{name:Name} may run the agent {count:Times} a day")
@harness_step
async def daily_allowance(context, name, count):
    actor = context.world.cast.actor(name)
    check_published(context.world.cast.instance.config, "agent runs per day", count, actor.plan)
    actor.daily_runs = count


@when("{name:Name} asks {pronoun:Pronoun} agent {count:Questions}, one after another")
@harness_step
async def asks_one_after_another(context, name, pronoun, count):
    pronoun.check_is(name, "agent")
    actor = context.world.cast.actor(name)
    actor.add_to_burst(await actor.ask_many(None, count, wait=True))


@when("each of {name:Name}'s devices asks {agents:Agents} at the same time")
@harness_step
async def each_device_asks_agents(context, name, agents):
    actor = context.world.cast.actor(name)
    agents = [context.world.cast.agent(agent) for agent in agents]
    await asyncio.gather(*(actor.ask(device, f"What should the {agent} do next on my {device}?",
                                     extra={"agent": agent})
                           for device in actor.devices for agent in agents))
