"""Accounts: who exists on which plan, and the lifecycle of their sessions."""

import asyncio

from behave import given, then, when

from support.loop import harness_step
from support.questions import (
    check_account_recorded, check_fresh_tokens, check_http_refusal, check_refused, check_session_revoked,
    check_tokens_bound, check_token_lifetime,
)


@given("{names:Names} has an account on the {plan:Plan} plan")
@given("{names:Names} have accounts on the {plan:Plan} plan")
@when("{names:Names} signs up on the {plan:Plan} plan")
@when("{names:Names} sign up on the {plan:Plan} plan")
@harness_step
async def accounts_on_plan(context, names, plan):
    """Sign each person up on the named plan (one the service publishes)."""
    cast = context.world.cast
    # At once: each sign-up waits on the service's password hashing, which runs in parallel.
    await asyncio.gather(*(cast.actor(name).sign_up(cast.plan(plan)) for name in names))
    context.world.group = names


@given("{count:People} have accounts on the {plan:Plan} plan")
@given("{count:People} has an account on the {plan:Plan} plan")
@harness_step
async def many_accounts(context, count, plan):
    cast = context.world.cast
    context.world.group = await cast.sign_up_crowd(count, cast.plan(plan))


@given("{name:Name} has an account on the {plan:Plan} plan as {role:Role}")
@harness_step
async def account_with_role(context, name, plan, role):
    cast = context.world.cast
    await cast.actor(name).sign_up(cast.plan(plan), role=cast.role(role))


@when("{name:Name} {signs:Signs} in on {device:Device}")
@harness_step
async def signs_in(context, name, signs, device):
    await context.world.cast.actor(name).sign_in(device)


@then("{name:Name} {receives:Receives} an access token and a refresh token")
@harness_step
async def receives_tokens(context, name, receives):
    actor = context.world.cast.actor(name)
    device = actor.only_signed_in_device()
    check_tokens_bound(device)
    check_token_lifetime(device.tokens, actor.cast.instance.config)


@then("the service has an account for {name:Name} on the {plan:Plan} plan")
@harness_step
async def account_recorded(context, name, plan):
    actor = context.world.cast.actor(name)
    check_account_recorded(actor, plan, await context.harness.database.user(actor.user_id))


@when("someone signs up again with {name:Name}'s e-mail address written {spelling:Spelling}")
@harness_step
async def signs_up_again(context, name, spelling):
    await context.world.cast.actor(name).sign_up_again(spelling)


@then("the sign-up {tense:Tense} refused because the address is taken")
@harness_step
async def sign_up_refused(context, tense):
    check_http_refusal(context.world.cast.last_http_answer(), "the second sign-up", 409, "email_taken")


@then("{name:Name}'s {device:DeviceName} holds tokens bound to its own session")
@harness_step
async def tokens_bound(context, name, device):
    actor = context.world.cast.actor(name)
    check_tokens_bound(actor.device(device), others=[d for d in actor.devices.values() if d.name != device])
    check_token_lifetime(actor.device(device).tokens, actor.cast.instance.config)


@given("{name:Name}'s {device:DeviceName} has refreshed its session")
@when("{name:Name}'s {device:DeviceName} refreshes its session")
@harness_step
async def refreshes(context, name, device):
    await context.world.cast.actor(name).device(device).refresh(context.world.cast.api)


@then("{name:Name}'s {device:DeviceName} holds new tokens for the same session")
@harness_step
async def fresh_tokens(context, name, device):
    entry = context.world.cast.actor(name).device(device)
    check_fresh_tokens(entry)
    check_token_lifetime(entry.tokens, context.world.cast.instance.config)


@then("{name:Name}'s {device:DeviceName} can refresh its session again with the new refresh token")
@harness_step
async def refreshes_again(context, name, device):
    entry = context.world.cast.actor(name).device(device)
    await entry.refresh(context.world.cast.api)
    check_fresh_tokens(entry)


@then("{name:Name} can connect from {device:Device} with the new token")
@harness_step
async def connects_with_new_token(context, name, device):
    await context.world.cast.actor(name).connect(device)


@when("someone presents {name:Name}'s {device:DeviceName}'s old refresh token again")
@harness_step
async def reuses_refresh_token(context, name, device):
    await context.world.cast.actor(name).present_old_refresh_token(device)


@then("the refresh {tense:Tense} refused")
@harness_step
async def refresh_refused(context, tense):
    check_http_refusal(context.world.cast.last_http_answer(), "the reused refresh token", 401)


@then("{name:Name}'s {device:DeviceName}'s session {tense:Tense} recorded as revoked")
@harness_step
async def session_revoked(context, name, device, tense):
    entry = context.world.cast.actor(name).device(device)
    check_session_revoked(entry, await context.harness.database.sessions_of(entry.tokens.user_id))


@when("{name:Name} {signs:Signs} out on {device:Device}")
@harness_step
async def signs_out(context, name, signs, device):
    await context.world.cast.actor(name).sign_out(device)


@then("{name:Name}'s {device:DeviceName}'s token {tense:Tense} refused at the handshake")
@then("{name:Name}'s {device:DeviceName}'s latest token {tense:Tense} refused at the handshake")
@harness_step
async def token_refused(context, name, device, tense):
    outcome = await context.world.cast.actor(name).try_connect(device, "bearer header")
    check_refused(outcome, {401})


@then("{name:Name}'s {device:DeviceName}'s token {tense:Tense} refused at the handshake on every instance")
@harness_step
async def token_refused_everywhere(context, name, device, tense):
    actor = context.world.cast.actor(name)
    for instance in context.world.cast.instances:
        check_refused(await actor.try_connect(device, "bearer header", instance=instance), {401})


@then("{name:Name}'s {device:DeviceName}'s token {tense:Tense} refused at the handshake on {instance:Instance}")
@harness_step
async def token_refused_on(context, name, device, tense, instance):
    cast = context.world.cast
    outcome = await cast.actor(name).try_connect(device, "bearer header", instance=cast.instance_at(instance))
    check_refused(outcome, {401})
