"""The golden path: asking the agent and receiving its answer."""

import asyncio

from behave import then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import check_agent_events, check_execution_recorded

register_phrases()


@when('{name:Name} asks {pronoun} agent "{question:Quoted}"')
@harness_step
async def asks(context, name, pronoun, question):
    """Ask from the actor's only connected device."""
    actor = context.world.cast.actor(name)
    connected = [d for d in actor.devices.values() if d.connection is not None]
    if len(connected) != 1:
        raise AssertionError(f"{name} is connected from {len(connected)} devices; "
                             f"say which one asks (\"... from her laptop\")")
    await actor.ask(connected[0].name, question)


@when('{name:Name} asks {pronoun} agent "{question:Quoted}" from {device:Device}')
@harness_step
async def asks_from(context, name, pronoun, question, device):
    await context.world.cast.actor(name).ask(device, question)


@when("each of them asks their agent a private question at the same time")
@harness_step
async def each_asks(context):
    cast = context.world.cast
    names = context.world.notes["group"]
    await asyncio.gather(*(
        cast.actor(name).ask(next(iter(cast.actor(name).devices)), f"What is {name}'s private balance?")
        for name in names))


@then("{name:Name} receives the agent's full answer")
@then("{name:Name}'s {device:DeviceName} receives the agent's full answer")
@harness_step
async def full_answer(context, name, device=None):
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    if device is not None and request.device.name != device:
        raise AssertionError(f"{name}'s last question was asked from the {request.device.name}, not the {device}")
    check_agent_events(request, await actor.answer_to(request))


@then("{name:Name} receives these events for {pronoun} question, in this order:")
@harness_step
async def events_in_order(context, name, pronoun):
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    expected = tuple(row["event"] for row in context.table)
    check_agent_events(request, await actor.answer_to(request), expected)


@then("each of them receives the agent's full answer to their own question")
@harness_step
async def each_full_answer(context):
    cast = context.world.cast
    actors = [cast.actor(name) for name in context.world.notes["group"]]
    answers = await asyncio.gather(*(a.answer_to(a.last_request()) for a in actors))
    for actor, events in zip(actors, answers):
        check_agent_events(actor.last_request(), events)


@then("{name:Name}'s run is recorded as completed for {pronoun} {device:DeviceName}")
@harness_step
async def run_recorded(context, name, pronoun, device):
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    rows = await context.harness.database.executions_for(actor.user_id, request.id)
    check_execution_recorded(request, actor.device(device), rows)
