"""Every operation of the contract, watched by everyone else; and other people's requests replayed."""

from behave import given, then, when

from support.loop import harness_step
from support.questions import check_nothing_reached
from support.replay import (
    check_holds_nothing_of, check_refused, listen_out, owner_reads_back, perform, replay, start_threads_everywhere, watchers,
)


@given("each of their devices has a thread of its own, and each of them one for all their devices")
@harness_step
async def threads_everywhere(context):
    await start_threads_everywhere(context.world.members())


@when('{name:Name}\'s {device:DeviceName} performs "{operation:ContractOperation}" with private data while everyone listens')
@harness_step
async def performs_operation(context, name, device, operation):
    """Perform it, note it for the isolation coverage (only if others and her other devices listen), drain."""
    world, harness = context.world, context.harness
    entry = world.cast.actor(name).device(device)
    listening = watchers(world.cast, entry.party)
    harness.isolation.observed(operation, entry.party, listening, world.scenario_name)
    await perform(world.cast.actor(name), device, operation, operator_token=harness.settings.operator_token)
    await world.cast.fence_all(world.backstop)


@when('{name:Name}\'s {device:DeviceName} replays {owner:Name}\'s "{operation:ContractOperation}" naming '
      '{pronoun:Pronoun} {thing:Replayed}')
@harness_step
async def replays_request(context, name, device, owner, operation, pronoun, thing):
    pronoun.check_is(owner, thing)
    cast = context.world.cast
    actor = cast.actor(name)
    actor.replayed = await replay(actor, device, operation, cast.actor(owner), thing)


@then('{name:Name}\'s {device:DeviceName} {tense:Tense} refused with "{code:Code}" and told nothing of {owner:Name}\'s')
@harness_step
async def replay_refused(context, name, device, tense, code, owner):
    world = context.world
    entry = world.cast.actor(name).device(device)
    check_refused(world.cast.actor(name).replayed, code, entry, world.cast.actor(owner))
    await listen_out(entry, world.cast.timeout, world.backstop)
    check_nothing_reached(world.leak_detector, entry.party, world.cast.actor(owner).party)


@then("{owner:Name}'s {thing:Replayed} holds nothing written by {name:Name}'s {device:DeviceName}")
@harness_step
async def holds_nothing_written(context, owner, thing, name, device):
    cast = context.world.cast
    who = cast.actor(name)
    read_back = await owner_reads_back(cast.actor(owner), thing)
    check_holds_nothing_of(read_back, who.replayed, cast.actor(owner), thing, who.device(device))

