"""Message formats: malformed input, legacy clients, precise errors."""

from behave import then, when

from support.loop import harness_step
from support.questions import check_error_names, error_reply


@when("{name:Name}'s {device:DeviceName} sends {message:Malformed}")
@harness_step
async def sends_malformed(context, name, device, message):
    await context.world.cast.actor(name).device(device).send_malformed(message)


@when("{name:Name}'s {device:DeviceName} sends text that is not valid UTF-8")
@harness_step
async def sends_invalid_utf8(context, name, device):
    await context.world.cast.actor(name).device(device).send_invalid_utf8()


@then('{name:Name}\'s {device:DeviceName} {tense:Tense} told "{code:Code}" naming "{culprit}"')
@harness_step
async def told_naming(context, name, device, tense, code, culprit):
    entry = context.world.cast.actor(name).device(device)
    frame = await error_reply(entry.received_on(), code, context.world.cast.timeout, entry.last_sent)
    check_error_names(frame, culprit)


@when('{name:Name} asks {pronoun:Pronoun} agent "{question:Quoted}" the way older apps do')
@harness_step
async def asks_legacy(context, name, pronoun, question):
    pronoun.check_is(name, "agent")
    await context.world.cast.actor(name).ask(None, question, legacy=True)
