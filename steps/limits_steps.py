"""Abuse limits: message size, message rate, and which web pages may open a socket."""

import asyncio

from behave import given, then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import check_agent_events, check_published, error_reply

register_phrases()


@given("messages may be at most {kilobytes:d} KB")
@harness_step
async def message_size_limit(context, kilobytes):
    check_published(context.world.cast.instance.config, "message size in bytes", kilobytes * 1024)


@given("{name:Name} may send at most {count:d} messages a minute")
@then("{name:Name} may send at most {count:d} messages a minute")
@harness_step
async def message_rate_limit(context, name, count):
    check_published(context.world.cast.instance.config, "messages per minute", count,
                    context.world.cast.actor(name).plan)
    context.world.notes["rate"] = count


@when("{name:Name}'s {device:DeviceName} sends a message of {kilobytes:d} KB")
@harness_step
async def sends_big_message(context, name, device, kilobytes):
    connection = context.world.cast.actor(name).device(device).connection
    filler = "x" * (kilobytes * 1024)
    await connection.send({"type": "chat", "id": connection.next_id("big"), "payload": {"text": filler}})


@when("{name:Name} asks {pronoun} agent a question of {kilobytes:d} KB")
@harness_step
async def asks_big_question(context, name, pronoun, kilobytes):
    question = ("How much is this? " * 1000)[: kilobytes * 1024 - 200]  # leaves room for envelope and marker
    await context.world.cast.actor(name).ask(None, question)


@when("{name:Name} asks {pronoun} agent {count:d} questions within a minute")
@harness_step
async def asks_many(context, name, pronoun, count):
    actor = context.world.cast.actor(name)
    for number in range(1, count + 1):
        await actor.ask(None, f"Question number {number}")


@then('{name:Name}\'s last question is refused as "{code:Code}" with a hint when to retry')
@harness_step
async def last_refused(context, name, code):
    actor = context.world.cast.actor(name)
    last, earlier = actor.requests[-1], actor.requests[:-1]
    connection = last.device.connection
    frame = await error_reply(connection, code, context.world.cast.timeout, last.sent_index, last.id)
    retry_after = (frame.message.get("payload") or {}).get("retry_after_seconds")
    if not isinstance(retry_after, (int, float)) or retry_after <= 0:
        raise AssertionError(f"the refusal gives no usable retry-after hint: {frame.text}")
    answers = await asyncio.gather(*(actor.answer_to(request) for request in earlier))
    for request, events in zip(earlier, answers):
        check_agent_events(request, events)


@then("{name:Name} can still ask {pronoun} agent and receive the full answer")
@harness_step
async def can_still_ask(context, name, pronoun):
    actor = context.world.cast.actor(name)
    request = await actor.ask(None, "Is everything still fine?")
    check_agent_events(request, await actor.answer_to(request))


@when('{name:Name} tries to connect from {device:Device} on a page from "{origin}"')
@harness_step
async def connects_from_origin(context, name, device, origin):
    context.world.last_handshake = await context.world.cast.actor(name).try_connect(device, "bearer header",
                                                                                     origin=origin)


@when("{name:Name} connects from {device:Device} on a page from the product's own web app")
@harness_step
async def connects_from_own_app(context, name, device):
    origin = context.world.cast.instance.default_origin
    if origin is None:
        raise AssertionError("the service publishes no allowed origin (/ws/secure/config allowed_origins)")
    context.world.last_handshake = await context.world.cast.actor(name).connect(device, origin=origin)


@when("{name:Name} tries to connect from {device:Device} without saying which page she is on")
@harness_step
async def connects_without_origin(context, name, device):
    context.world.last_handshake = await context.world.cast.actor(name).try_connect(device, "bearer header",
                                                                                     origin=None)


@given("the service accepts browsers only")
@harness_step
async def browsers_only(context):
    if context.world.cast.instance.security.get("origin_required") is not True:
        context.scenario.skip(reason=f"{context.world.cast.instance} does not say it accepts browsers only "
                                     f"(origin_required is not true in /ws/secure/config)")
