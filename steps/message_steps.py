"""Message formats: malformed input, legacy clients, precise errors."""

from behave import then, when

from support.loop import harness_step
from support.phrases import malformed_message, register_phrases
from support.questions import error_reply

register_phrases()


@when("{name:Name}'s {device:DeviceName} sends {message:Malformed}")
@harness_step
async def sends_malformed(context, name, device, message):
    connection = context.world.cast.actor(name).device(device).connection
    frame = malformed_message(message, connection.next_id("bad"))
    context.world.notes["sent at"] = await connection.send(frame)


@when("{name:Name}'s {device:DeviceName} sends text that is not valid UTF-8")
@harness_step
async def sends_invalid_utf8(context, name, device):
    connection = context.world.cast.actor(name).device(device).connection
    await connection.send(b'{"type": "ping", "payload": "\xff\xfe"}', as_text=True)


@then('{name:Name}\'s {device:DeviceName} is told "{code:Code}" naming "{culprit}"')
@harness_step
async def told_naming(context, name, device, code, culprit):
    connection = context.world.cast.actor(name).device(device).connection
    frame = await error_reply(connection, code, context.world.cast.timeout, context.world.notes.get("sent at", 0))
    payload = frame.message.get("payload") or {}
    if culprit not in (payload.get("type"), payload.get("field")) and culprit not in str(payload.get("message")):
        raise AssertionError(f"the error does not name {culprit!r}: {frame.text}")


@when('{name:Name} asks {pronoun} agent "{question:Quoted}" the way older apps do')
@harness_step
async def asks_legacy(context, name, pronoun, question):
    await context.world.cast.actor(name).ask(None, question, legacy=True)
