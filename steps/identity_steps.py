"""Identity boundaries: renewing tokens, speaking for others, other people's threads."""

from behave import given, then, when

from support.loop import harness_step
from support.questions import check_indistinguishable_refusals, check_nothing_recorded, check_outlived, error_reply


@when("{name:Name}'s {device:DeviceName} renews its token")
@harness_step
async def renews_token(context, name, device):
    """Renew on the open socket with a fresh token for the same user and session."""
    cast = context.world.cast
    await cast.actor(name).device(device).renew_fresh(cast.tokens, cast.timeout)


@when("{name:Name}'s {device:DeviceName} renews its token with the token of {owner:Name}'s {other:DeviceName}")
@harness_step
async def renews_with_foreign_token(context, name, device, owner, other):
    cast = context.world.cast
    await cast.actor(name).device(device).send_renewal(cast.actor(owner).device(other).tokens.access_token)


@then("{name:Name}'s {device:DeviceName} {tense:Tense} still connected {seconds:Seconds} after the old token expired")
@harness_step
async def connected_after_old_expiry(context, name, device, tense, seconds):
    """The renewed socket outlives the old token's expiry plus the grace the service has to act."""
    await check_outlived(context.world.cast.actor(name).device(device), seconds, context.harness.clock(),
                         context.world.cast.timeout)


@then('{name:Name}\'s {device:DeviceName} {tense:Tense} told "{code:Code}"')
@harness_step
async def told(context, name, device, tense, code):
    entry = context.world.cast.actor(name).device(device)
    await error_reply(entry.received_on(), code, context.world.cast.timeout, entry.last_sent)


@when('{name:Name} asks {pronoun:Pronoun} agent "{question:Quoted}" claiming to be {other:Name}')
@harness_step
async def asks_as_someone_else(context, name, pronoun, question, other):
    pronoun.check_is(name, "agent")
    cast = context.world.cast
    await cast.actor(name).ask(None, question, extra={"user_id": cast.actor(other).user_id})


@then("nothing {tense:Tense} recorded for {name:Name}")
@harness_step
async def nothing_recorded(context, tense, name):
    actor = context.world.cast.actor(name)
    check_nothing_recorded(actor, await context.harness.database.executions_of(actor.user_id))


@given('{name:Name} has a thread "{title:Quoted}" for all {pronoun:Pronoun} devices')
@harness_step
async def has_user_thread(context, name, title, pronoun):
    pronoun.check_is(name, "devices")
    actor = context.world.cast.actor(name)
    await actor.create_thread(actor.only_connected_device().name, title, "user")


@when("{name:Name} tries to {action:ThreadAction} {owner:Name}'s thread")
@harness_step
async def tries_foreign_thread(context, name, action, owner):
    """The same request for the owner's thread and for one that never existed; keep both answers."""
    cast = context.world.cast
    await cast.actor(name).probe_thread(action, cast.actor(owner).last_thread)


@then("{name:Name} {tense:Tense} told the thread does not exist, exactly as for a thread that never existed")
@harness_step
async def told_not_found(context, name, tense):
    existing, never_existed = context.world.cast.actor(name).thread_answers
    check_indistinguishable_refusals(existing, never_existed)
