"""Isolation: nobody receives what belongs to someone else."""

from behave import then, when

from support.loop import harness_step
from support.questions import (
    check_nothing_of_run, check_nothing_reached, check_only_on_session_channel, check_planted_leak_reported,
)


@then("{name:Name} {receives:Receives} nothing that belongs to {owner:Name}")
@harness_step
async def receives_nothing_of(context, name, receives, owner):
    """Fence every socket of the receiver, then let the leak detector judge."""
    world = context.world
    await world.cast.fence_all(world.backstop)
    check_nothing_reached(world.leak_detector, world.cast.actor(name).party, world.cast.actor(owner).party)


@then("nobody {receives:Receives} anything that belongs to someone else")
@harness_step
async def nobody_receives_foreign(context, receives):
    await context.world.cast.fence_all(context.world.backstop)
    context.world.leak_detector.raise_if_violated()


@then("{name:Name}'s {device:DeviceName} {receives:Receives} nothing from that run")
@harness_step
async def nothing_from_run(context, name, device, receives):
    world = context.world
    entry = world.cast.actor(name).device(device)
    request = world.cast.actor(name).last_request()
    await world.cast.fence_one(entry.open_connection(), world.backstop)
    check_nothing_of_run(entry, request)


@then("the run's events travelled only on the channel of {name:Name}'s {device:DeviceName} session")
@harness_step
async def only_on_session_channel(context, name, device):
    actor = context.world.cast.actor(name)
    await check_only_on_session_channel(actor.last_request(), actor.device(device), context.harness.fanout,
                                        context.world.cast.timeout)


@when("a copy of {name:Name}'s answer is slipped into {other:Name}'s {device:DeviceName} event channel")
@harness_step
async def plant_leak(context, name, other, device):
    """Publish a real frame of the owner's on the other's session channel, as a routing bug would."""
    world = context.world
    owner = world.cast.actor(name)
    world.planted = await owner.slip_answer_into(world.cast.actor(other).device(device), context.harness.fanout)


@then("the isolation check fails, naming {name:Name}, {other:Name}'s {device:DeviceName} and the frame")
@harness_step
async def isolation_check_fired(context, name, other, device):
    world = context.world
    check_planted_leak_reported(world.planted, world.cast.actor(name).last_request(),
                                world.cast.actor(other).device(device))
