"""The golden path: asking the agent and receiving its answer."""

import asyncio

from behave import then, when

from support.actors import PRIVATE_QUESTION
from support.loop import harness_step
from support.questions import check_agent_events, check_execution_recorded, check_own_answers


@when('{name:Name} asks {pronoun:Pronoun} agent "{question:Quoted}"')
@when('{name:Name} asked {pronoun:Pronoun} agent "{question:Quoted}"')
@harness_step
async def asks(context, name, pronoun, question):
    """Ask from the actor's only connected device (a sentence naming none relies on there being one)."""
    pronoun.check_is(name, "agent")
    await context.world.cast.actor(name).ask(None, question)


@when('{name:Name} asks {pronoun:Pronoun} agent "{question:Quoted}" from {device:Device}')
@harness_step
async def asks_from(context, name, pronoun, question, device):
    pronoun.check_is(name, "agent")
    await context.world.cast.actor(name).ask(device, question)


@when("each of them asks their agent {count:PrivateQuestions}")
@when("each of them asks their agent {count:PrivateQuestions} at the same time")
@when("each of them asks their agent {count:PrivateQuestions} from their {device:DeviceName}")
@when("each of them asks their agent {count:PrivateQuestions} from their {device:DeviceName} at the same time")
@harness_step
async def each_asks(context, count, device=None):
    """Everyone of the group asks at once, from the device named, or the one each is connected from."""
    await asyncio.gather(*(actor.ask_many(device, count, PRIVATE_QUESTION) for actor in context.world.members()))


@when("each of them asks their agent {count:PrivateQuestions} from each of their devices at the same time")
@harness_step
async def each_asks_from_every_device(context, count):
    await asyncio.gather(*(actor.ask_many(device.name, count, PRIVATE_QUESTION)
                           for actor in context.world.members() for device in actor.connected_devices()))


@then("{name:Name} {receives:Receives} the agent's full answer")
@then("{name:Name}'s {device:DeviceName} {receives:Receives} the agent's full answer")
@harness_step
async def full_answer(context, name, receives, device=None):
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    if device is not None and request.device.name != device:
        raise AssertionError(f"{name}'s last question was asked from the {request.device.name}, not the {device}")
    check_agent_events(request, await actor.answer_to(request))


@then("{name:Name} {receives:Receives} these events for {pronoun:Pronoun} question, in this order:")
@harness_step
async def events_in_order(context, name, receives, pronoun):
    pronoun.check_is(name, "question")
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    expected = tuple(row["event"] for row in context.table)
    check_agent_events(request, await actor.answer_to(request), expected)


@then("each of them {receives:Receives} the agent's full answer to their own question")
@then("each of them {receives:Receives} the agent's full answers to their own questions")
@then("each of them {receives:Receives} the agent's full answer to each of their own questions")
@harness_step
async def each_full_answer(context, receives):
    """Every question every member asked in this scenario is answered in full, on the device that asked."""
    await check_own_answers(context.world.members())


@then("{name:Name}'s run {tense:Tense} recorded as completed for {pronoun:Pronoun} {device:DeviceName}")
@harness_step
async def run_recorded(context, name, tense, pronoun, device):
    pronoun.check_is(name, device)
    actor = context.world.cast.actor(name)
    request = actor.last_request()
    rows = await context.harness.database.executions_for(actor.user_id, request.id)
    check_execution_recorded(request, actor.device(device), rows)
