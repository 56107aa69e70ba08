"""Accounts: who exists on which plan, and the lifecycle of their sessions."""

from behave import given, then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import (
    check_account_recorded, check_fresh_tokens, check_http_refusal, check_refused, check_tokens_bound,
)

register_phrases()


@given("{names:Names} has an account on the {plan} plan")
@given("{names:Names} have accounts on the {plan} plan")
@when("{names:Names} signs up on the {plan} plan")
@harness_step
async def accounts_on_plan(context, names, plan):
    """Sign each person up on the named plan (Trial, Free, Pro, Enterprise)."""
    cast = context.world.cast
    for name in names:
        await cast.actor(name).sign_up(plan.lower())
    context.world.notes["group"] = names


@given("{name:Name} has an account on the {plan} plan as {role}")
@harness_step
async def account_with_role(context, name, plan, role):
    await context.world.cast.actor(name).sign_up(plan.lower(), role=role)


@when("{name:Name} signs in on {device:Device}")
@harness_step
async def signs_in(context, name, device):
    await context.world.cast.actor(name).sign_in(device)


@then("{name:Name} receives an access token and a refresh token")
@harness_step
async def receives_tokens(context, name):
    device = next(iter(context.world.cast.actor(name).devices.values()))
    check_tokens_bound(device)


@then("the service has an account for {name:Name} on the {plan} plan")
@harness_step
async def account_recorded(context, name, plan):
    actor = context.world.cast.actor(name)
    check_account_recorded(actor, plan.lower(), await context.harness.database.user(actor.user_id))


@when("someone signs up again with {name:Name}'s e-mail address written {spelling}")
@harness_step
async def signs_up_again(context, name, spelling):
    actor = context.world.cast.actor(name)
    spellings = {"exactly as she wrote it": actor.email, "exactly as he wrote it": actor.email,
                 "in capital letters": actor.email.upper()}
    context.world.notes["answer"] = await context.world.cast.api.post(
        "/auth/register", {"email": spellings[spelling], "password": "another-password-123", "plan": "free",
                           "device_type": "laptop_browser"})


@then("the sign-up is refused because the address is taken")
@harness_step
async def sign_up_refused(context):
    check_http_refusal(context.world.notes["answer"], "the second sign-up", 409, "email_taken")


@then("{name:Name}'s {device:DeviceName} holds tokens bound to its own session")
@harness_step
async def tokens_bound(context, name, device):
    actor = context.world.cast.actor(name)
    check_tokens_bound(actor.device(device), others=[d for d in actor.devices.values() if d.name != device])


@given("{name:Name}'s {device:DeviceName} has refreshed its session")
@when("{name:Name}'s {device:DeviceName} refreshes its session")
@harness_step
async def refreshes(context, name, device):
    await context.world.cast.actor(name).device(device).refresh(context.world.cast.api)


@then("{name:Name}'s {device:DeviceName} holds new tokens for the same session")
@harness_step
async def fresh_tokens(context, name, device):
    check_fresh_tokens(context.world.cast.actor(name).device(device))


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
    old = context.world.cast.actor(name).device(device).previous_tokens[-1].refresh_token
    context.world.notes["answer"] = await context.world.cast.api.post("/auth/refresh", {"refresh_token": old})


@then("the refresh is refused")
@harness_step
async def refresh_refused(context):
    check_http_refusal(context.world.notes["answer"], "the reused refresh token", 401)


@when("{name:Name} signs out on {device:Device}")
@harness_step
async def signs_out(context, name, device):
    entry = context.world.cast.actor(name).device(device)
    await context.world.cast.api.logout(entry.tokens.access_token)


@then("{name:Name}'s {device:DeviceName}'s token is refused at the handshake")
@then("{name:Name}'s {device:DeviceName}'s latest token is refused at the handshake")
@harness_step
async def token_refused(context, name, device):
    outcome = await context.world.cast.actor(name).try_connect(device, "bearer header")
    check_refused(outcome, {401})


@then("{name:Name}'s {device:DeviceName}'s token is refused at the handshake on every instance")
@harness_step
async def token_refused_everywhere(context, name, device):
    actor = context.world.cast.actor(name)
    for instance in context.world.cast.instances:
        check_refused(await actor.try_connect(device, "bearer header", instance=instance), {401})


@given("{name:Name} is connected from {device:Device} through the second instance")
@harness_step
async def connected_through_second(context, name, device):
    await context.world.cast.actor(name).connect(device, instance=context.world.cast.instances[1])
