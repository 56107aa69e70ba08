"""One person on several devices: each device's runs and threads stay where they belong."""

from behave import given, then, when

from support.loop import harness_step
from support.questions import (
    check_nothing_reached, check_runs_kept_to_devices, check_thread_message, check_thread_readable,
    check_thread_recorded, check_thread_unknown,
)


@then("each of {name:Name}'s devices {receives:Receives} the full answers of its own {count:Runs} and nothing else")
@harness_step
async def own_runs_only(context, name, receives, count):
    world = context.world
    await check_runs_kept_to_devices(world.cast.actor(name), count, world.cast, world.backstop)


@then("{name:Name}'s {device:DeviceName} {receives:Receives} nothing that belongs to {owner:Name}'s {other:DeviceName}")
@harness_step
async def nothing_of_other_device(context, name, device, receives, owner, other):
    receiver = context.world.cast.actor(name).device(device)
    source = context.world.cast.actor(owner).device(other)
    await context.world.cast.fence_one(receiver.open_connection(), context.world.backstop)
    check_nothing_reached(context.world.leak_detector, receiver.party, source.party)


@given('{name:Name} has started a thread "{title:Quoted}" on {device:Device} kept to that device')
@when('{name:Name} starts a thread "{title:Quoted}" on {device:Device} kept to that device')
@harness_step
async def starts_session_thread(context, name, title, device):
    await context.world.cast.actor(name).create_thread(device, title, "session")


@given('{name:Name} has started a thread "{title:Quoted}" on {device:Device} for all {pronoun:Pronoun} devices')
@when('{name:Name} starts a thread "{title:Quoted}" on {device:Device} for all {pronoun:Pronoun} devices')
@harness_step
async def starts_user_thread(context, name, title, device, pronoun):
    pronoun.check_is(name, "devices")
    await context.world.cast.actor(name).create_thread(device, title, "user")


@then("{name:Name}'s {device:DeviceName} can read the thread")
@harness_step
async def can_read_thread(context, name, device):
    actor = context.world.cast.actor(name)
    check_thread_readable(actor.device(device), await actor.thread_request(device, "read", actor.last_thread))


@then("{name:Name}'s {device:DeviceName} {tense:Tense} told the thread does not exist")
@harness_step
async def told_thread_missing(context, name, device, tense):
    actor = context.world.cast.actor(name)
    check_thread_unknown(actor.device(device), await actor.thread_request(device, "read", actor.last_thread))


@when('{name:Name} writes "{text:Quoted}" in the thread from {device:Device}')
@harness_step
async def writes_in_thread(context, name, text, device):
    actor = context.world.cast.actor(name)
    await actor.thread_request(device, "write to", actor.last_thread, text=text)


@then('{name:Name}\'s {device:DeviceName} {receives:Receives} "{text:Quoted}" in the thread')
@harness_step
async def receives_thread_message(context, name, device, receives, text):
    actor = context.world.cast.actor(name)
    await check_thread_message(actor.device(device), actor.last_thread, text, context.world.cast.timeout)


@then("the service records the thread for {name:Name}'s {device:DeviceName} session only")
@harness_step
async def thread_recorded_for_session(context, name, device):
    actor = context.world.cast.actor(name)
    entry = actor.device(device)
    row = await context.harness.database.thread(actor.last_thread)
    check_thread_recorded(row, entry.tokens.user_id, "session", entry.tokens.session_id)


@then("the service records the thread for all of {name:Name}'s sessions")
@harness_step
async def thread_recorded_for_user(context, name):
    actor = context.world.cast.actor(name)
    row = await context.harness.database.thread(actor.last_thread)
    check_thread_recorded(row, actor.user_id, "user", None)
