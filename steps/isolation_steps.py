"""Isolation: nobody receives what belongs to someone else."""

from behave import then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import check_nothing_of_run, check_nothing_reached, check_planted_leak_reported

register_phrases()


@then("{name:Name} receives nothing that belongs to {owner:Name}")
@harness_step
async def receives_nothing_of(context, name, owner):
    """Fence every socket of the receiver, then let the leak detector judge."""
    world = context.world
    await world.cast.fence_all(context.harness.settings.backstop_seconds)
    check_nothing_reached(world.leak_detector, world.cast.actor(name).party, world.cast.actor(owner).party)


@then("nobody receives anything that belongs to someone else")
@harness_step
async def nobody_receives_foreign(context):
    await context.world.cast.fence_all(context.harness.settings.backstop_seconds)
    context.world.leak_detector.raise_if_violated()


@then("{name:Name}'s {device:DeviceName} receives nothing from that run")
@harness_step
async def nothing_from_run(context, name, device):
    world = context.world
    entry = world.cast.actor(name).device(device)
    request = world.cast.actor(name).last_request()
    await entry.connection.fence(world.cast.timeout, context.harness.settings.backstop_seconds)
    check_nothing_of_run(entry, request)


@then("the run's events travelled only on the channel of {name:Name}'s {device:DeviceName} session")
@harness_step
async def only_on_session_channel(context, name, device):
    world = context.world
    actor = world.cast.actor(name)
    request = actor.last_request()
    fanout = context.harness.fanout
    # The fence follows the run's events on the same path: once the recorder has seen it,
    # it has seen every publication of the run.
    fence_id = await request.device.connection.fence(world.cast.timeout, 0)
    await fanout.wait_until_seen(fence_id, world.cast.timeout)
    channels = fanout.channels_carrying(request.marker)
    expected = {f"events:session:{actor.device(device).tokens.session_id}"}
    if channels != expected:
        raise AssertionError(f"the events of {request.device}'s run travelled on {sorted(channels) or 'no channel'}; "
                             f"expected only {sorted(expected)}")


@when("a copy of {name:Name}'s answer is slipped into {other:Name}'s {device:DeviceName} event channel")
@harness_step
async def plant_leak(context, name, other, device):
    """Publish a real frame of Alice's on Bob's session channel, as a routing bug would."""
    world = context.world
    owner = world.cast.actor(name)
    request = owner.last_request()
    events = await owner.answer_to(request)
    target = world.cast.actor(other).device(device)
    await context.harness.fanout.publish(f"events:session:{target.tokens.session_id}", events[-1].text)
    await target.connection.wait_for(lambda f: request.marker in f.text,
                                     f"the planted copy of {name}'s answer", world.cast.timeout)
    world.notes["planted"] = world.leak_detector.take_planted()


@then("the isolation check fails, naming {name:Name}, {other:Name}'s {device:DeviceName} and the frame")
@harness_step
async def isolation_check_fired(context, name, other, device):
    world = context.world
    check_planted_leak_reported(world.notes.get("planted", []), world.cast.actor(name).last_request(),
                                world.cast.actor(other).device(device))
