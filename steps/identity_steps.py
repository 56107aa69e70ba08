"""Identity boundaries: renewing tokens, speaking for others, other people's threads."""

import uuid

from behave import given, then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import check_indistinguishable_refusals, error_reply

register_phrases()


@when("{name:Name}'s {device:DeviceName} renews its token")
@harness_step
async def renews_token(context, name, device):
    """Renew on the open socket with a fresh token for the same user and session."""
    entry = context.world.cast.actor(name).device(device)
    token = context.harness.tokens.mint(entry.tokens.user_id, entry.tokens.session_id)
    context.harness.redactor.register(token, "access token")
    await entry.renew(token, context.world.cast.timeout)


@when("{name:Name}'s {device:DeviceName} renews its token with the token of {owner:Name}'s {other:DeviceName}")
@harness_step
async def renews_with_foreign_token(context, name, device, owner, other):
    entry = context.world.cast.actor(name).device(device)
    foreign = context.world.cast.actor(owner).device(other).tokens.access_token
    context.world.notes["sent at"] = await entry.connection.send(
        {"type": "reauthenticate", "id": entry.connection.next_id("renew"), "payload": {"token": foreign}})


@then("{name:Name}'s {device:DeviceName} is still connected {seconds:d} seconds after the old token expired")
@harness_step
async def connected_after_old_expiry(context, name, device, seconds):
    """The renewed socket outlives the old token's expiry plus the grace the service has to act."""
    entry = context.world.cast.actor(name).device(device)
    deadline = context.world.notes["token expiry"] + seconds
    if await entry.connection.wait_closed(deadline - context.harness.clock()):
        raise AssertionError(f"{entry} was disconnected with code {entry.connection.close_code} although it "
                             f"renewed its token before the old one expired")
    await context.world.cast.actor(name).device(device).connection.fence(context.world.cast.timeout, 0)


@then('{name:Name}\'s {device:DeviceName} is told "{code:Code}"')
@harness_step
async def told(context, name, device, code):
    connection = context.world.cast.actor(name).device(device).connection
    await error_reply(connection, code, context.world.cast.timeout, context.world.notes.get("sent at", 0))


@when('{name:Name} asks {pronoun} agent "{question:Quoted}" claiming to be {other:Name}')
@harness_step
async def asks_as_someone_else(context, name, pronoun, question, other):
    actor = context.world.cast.actor(name)
    device = actor.only_connected_device()
    impostor = context.world.cast.actor(other).user_id
    request = await actor.ask(device.name, question, extra={"user_id": impostor})
    context.world.notes["sent at"] = request.sent_index


@then("nothing is recorded for {name:Name}")
@harness_step
async def nothing_recorded(context, name):
    actor = context.world.cast.actor(name)
    runs = await context.harness.database.executions_of(actor.user_id)
    if runs:
        raise AssertionError(f"agent_executions holds {len(runs)} run(s) for {name}; expected none: {runs[0]}")


@given('{name:Name} has a thread "{title}" for all {pronoun} devices')
@harness_step
async def has_user_thread(context, name, title, pronoun):
    actor = context.world.cast.actor(name)
    context.world.notes["thread"] = await actor.create_thread(actor.only_connected_device().name, title, "user")


@when("{name:Name} tries to {action} {owner:Name}'s thread")
@harness_step
async def tries_foreign_thread(context, name, action, owner):
    """The same request for the owner's thread and for one that never existed; keep both answers."""
    actor = context.world.cast.actor(name)
    device = actor.only_connected_device()
    thread_id = context.world.notes["thread"]
    answers = [await actor.thread_request(device.name, action, target) for target in (thread_id, str(uuid.uuid4()))]
    context.world.notes["thread answers"] = answers


@then("{name:Name} is told the thread does not exist, exactly as for a thread that never existed")
@harness_step
async def told_not_found(context, name):
    existing, never_existed = context.world.notes["thread answers"]
    check_indistinguishable_refusals(existing, never_existed)
