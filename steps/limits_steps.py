"""Abuse limits: message size, message rate, and which web pages may open a socket."""

from behave import given, then, when

from support.loop import harness_step
from support.questions import check_agent_events, check_published, check_refused_past_limit


@given("messages may be at most {kilobytes:Kilobytes}")
@harness_step
async def message_size_limit(context, kilobytes):
    check_published(context.world.cast.instance.config, "message size in bytes", kilobytes * 1024)


@given("{name:Name} may send at most {count:Messages} a minute")
@then("{name:Name} may send at most {count:Messages} a minute")
@harness_step
async def message_rate_limit(context, name, count):
    check_published(context.world.cast.instance.config, "messages per minute", count,
                    context.world.cast.actor(name).plan)
    context.world.rate_limit = count


@when("{name:Name}'s {device:DeviceName} sends a message of {kilobytes:Kilobytes}")
@harness_step
async def sends_big_message(context, name, device, kilobytes):
    await context.world.cast.actor(name).device(device).send_message_of(kilobytes)


@when("{name:Name} asks {pronoun:Pronoun} agent a question of {kilobytes:Kilobytes}")
@harness_step
async def asks_big_question(context, name, pronoun, kilobytes):
    pronoun.check_is(name, "agent")
    await context.world.cast.actor(name).ask_question_of(kilobytes)


@when("{name:Name} asks {pronoun:Pronoun} agent {count:Questions} within a minute")
@when("{name:Name} asks {pronoun:Pronoun} agent {count:Questions} within a minute from {device:Device}")
@harness_step
async def asks_many(context, name, pronoun, count, device=None):
    """Questions one after another without waiting; several such steps make one burst, in the order sent."""
    pronoun.check_is(name, "agent")
    actor = context.world.cast.actor(name)
    actor.add_to_burst(await actor.ask_many(device, count))


@then('{name:Name}\'s questions past the limit are refused as "{code:Code}" with a hint when to retry')
@then('{name:Name}\'s last question {tense:Tense} refused as "{code:Code}" with a hint when to retry')
@then('{name:Name}\'s last {count:Questions} are refused as "{code:Code}" with a hint when to retry')
@harness_step
async def refused_past_limit(context, name, code, tense=None, count=None):
    """The questions within the allowance are answered in full; every one past it is refused, the socket open."""
    world = context.world
    await check_refused_past_limit(world.cast.actor(name), code, world.stated_limit(code, world.cast.actor(name)), world.cast.timeout,
                                   expected_refusals=count)


@then("{name:Name} can still ask {pronoun:Pronoun} agent and receive the full answer")
@harness_step
async def can_still_ask(context, name, pronoun):
    pronoun.check_is(name, "agent")
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
    context.world.last_handshake = await context.world.cast.actor(name).connect_from_own_app(device)


@when("{name:Name} tries to connect from {device:Device} without saying which page {she:She} is on")
@harness_step
async def connects_without_origin(context, name, device, she):
    context.world.last_handshake = await context.world.cast.actor(name).try_connect(device, "bearer header",
                                                                                     origin=None)


@given("the service accepts browsers only")
@harness_step
async def browsers_only(context):
    instance = context.world.cast.instance
    if instance.security.get("origin_required") is not True:
        context.scenario.skip(reason=f"{instance} does not say it accepts browsers only "
                                     f"(origin_required is not true in /ws/secure/config)")
