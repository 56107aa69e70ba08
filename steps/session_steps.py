"""One person on several devices: each device's runs and threads stay where they belong."""

import asyncio

from behave import then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import check_agent_events, check_nothing_of_run, check_nothing_reached, check_thread_recorded

register_phrases()


@then("each of {name:Name}'s devices receives the full answers of its own three runs and nothing else")
@harness_step
async def own_runs_only(context, name):
    actor = context.world.cast.actor(name)
    answers = await asyncio.gather(*(actor.answer_to(request) for request in actor.requests))
    for request, events in zip(actor.requests, answers):
        check_agent_events(request, events)
    await context.world.cast.fence_all(context.harness.settings.backstop_seconds)
    for device in actor.devices.values():
        for request in actor.requests:
            if request.device is not device:
                check_nothing_of_run(device, request)


@then("{name:Name}'s {device:DeviceName} receives nothing that belongs to {owner:Name}'s {other:DeviceName}")
@harness_step
async def nothing_of_other_device(context, name, device, owner, other):
    receiver = context.world.cast.actor(name).device(device)
    source = context.world.cast.actor(owner).device(other)
    await receiver.connection.fence(context.world.cast.timeout, context.harness.settings.backstop_seconds)
    check_nothing_reached(context.world.leak_detector, receiver.party, source.party)


@when('{name:Name} starts a thread "{title}" on {device:Device} kept to that device')
@harness_step
async def starts_session_thread(context, name, title, device):
    context.world.notes["thread"] = await context.world.cast.actor(name).create_thread(device, title, "session")


@when('{name:Name} starts a thread "{title}" on {device:Device} for all {pronoun} devices')
@harness_step
async def starts_user_thread(context, name, title, device, pronoun):
    context.world.notes["thread"] = await context.world.cast.actor(name).create_thread(device, title, "user")


@then("{name:Name}'s {device:DeviceName} can read the thread")
@harness_step
async def can_read_thread(context, name, device):
    answer = await context.world.cast.actor(name).thread_request(device, "read", context.world.notes["thread"])
    if answer.type != "thread":
        raise AssertionError(f"{name}'s {device} could not read the thread: {answer.text}")


@then("{name:Name}'s {device:DeviceName} is told the thread does not exist")
@harness_step
async def told_thread_missing(context, name, device):
    answer = await context.world.cast.actor(name).thread_request(device, "read", context.world.notes["thread"])
    if answer.type != "error" or (answer.message.get("payload") or {}).get("code") != "not_found":
        raise AssertionError(f"{name}'s {device} should not see the thread; it was answered {answer.text}")


@when('{name:Name} writes "{text}" in the thread from {device:Device}')
@harness_step
async def writes_in_thread(context, name, text, device):
    answer = await context.world.cast.actor(name).thread_request(device, "write to", context.world.notes["thread"],
                                                                 text=text)
    context.world.notes["thread post"] = answer


@then('{name:Name}\'s {device:DeviceName} receives "{text}" in the thread')
@harness_step
async def receives_thread_message(context, name, device, text):
    thread_id = context.world.notes["thread"]
    connection = context.world.cast.actor(name).device(device).connection
    await connection.wait_for(lambda f: f.type == "thread_message" and text in f.text and thread_id in f.text,
                              f"{text!r} in the thread", context.world.cast.timeout)


@then("the service records the thread for {name:Name}'s {device:DeviceName} session only")
@harness_step
async def thread_recorded_for_session(context, name, device):
    entry = context.world.cast.actor(name).device(device)
    row = await context.harness.database.thread(context.world.notes["thread"])
    check_thread_recorded(row, entry.tokens.user_id, "session", entry.tokens.session_id)


@then("the service records the thread for all of {name:Name}'s sessions")
@harness_step
async def thread_recorded_for_user(context, name):
    actor = context.world.cast.actor(name)
    row = await context.harness.database.thread(context.world.notes["thread"])
    check_thread_recorded(row, actor.user_id, "user", None)
