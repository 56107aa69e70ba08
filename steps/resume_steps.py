"""Resuming: a device that lost its connection picks up where it left off, or is told why not."""

from behave import then, when

from support.loop import harness_step
from support.resume import (
    check_none_of_the_events, check_nothing_to_pick_up, check_rest_of_answer, check_told_of_gap,
    connect_where_other_left_off, lose_connection_while_answering, lose_connection_while_outrun,
    reconnect_where_left_off,
)


@when('{name:Name}\'s {device:DeviceName} loses its connection in a tunnel while {pronoun:Pronoun} agent answers '
      '"{question:Quoted}"')
@harness_step
async def loses_connection_mid_answer(context, name, device, pronoun, question):
    """Nothing more arrives after the agent's first event, as in a tunnel; the rest is still on its way."""
    pronoun.check_is(name, "agent")
    await lose_connection_while_answering(context.world.cast.actor(name), device, [question])


@when("{name:Name}'s {device:DeviceName} loses its connection in a tunnel while {pronoun:Pronoun} agent says more "
      "than the service keeps")
@harness_step
async def loses_connection_for_too_long(context, name, device, pronoun):
    """Enough questions that the events missed outnumber what the service publishes it keeps."""
    pronoun.check_is(name, "agent")
    world = context.world
    await lose_connection_while_outrun(world.cast.actor(name), device, context.harness.database, world.cast.timeout)


@when("{name:Name}'s {device:DeviceName} reconnects where it left off")
@harness_step
async def reconnects_where_left_off(context, name, device):
    await reconnect_where_left_off(context.world.cast.actor(name), device)


@when("{name:Name}'s {device:DeviceName} reconnects where it left off through {instance:Instance}")
@harness_step
async def reconnects_through(context, name, device, instance):
    cast = context.world.cast
    await reconnect_where_left_off(cast.actor(name), device, cast.instance_at(instance))


@when("{name:Name} connects from {device:Device} where {owner:Name}'s {owner_device:DeviceName} left off")
@harness_step
async def connects_where_other_left_off(context, name, device, owner, owner_device):
    cast = context.world.cast
    await connect_where_other_left_off(cast.actor(name), device, cast.actor(owner).device(owner_device))


@then("{name:Name}'s {device:DeviceName} {receives:Receives} the rest of the answer, once and in order")
@harness_step
async def rest_of_answer(context, name, device, receives):
    cast = context.world.cast
    await check_rest_of_answer(cast.actor(name).device(device).tunnel, cast.timeout)


@then("{name:Name}'s {device:DeviceName} {tense:Tense} told plainly that it missed events the service no longer "
      "keeps")
@harness_step
async def told_of_gap(context, name, device, tense):
    cast = context.world.cast
    await check_told_of_gap(cast.actor(name).device(device).tunnel, cast.timeout)


@then("{name:Name}'s {device:DeviceName} {tense:Tense} told there is nothing to pick up where "
      "{owner:Name}'s {owner_device:DeviceName} left off")
@harness_step
async def told_nothing_to_pick_up(context, name, device, tense, owner, owner_device):
    cast = context.world.cast
    await check_nothing_to_pick_up(cast.actor(name).device(device).open_connection(),
                                   cast.actor(owner).device(owner_device).tunnel, cast.timeout)


@then("{name:Name}'s {device:DeviceName} {receives:Receives} none of the events {owner:Name}'s "
      "{owner_device:DeviceName} missed")
@harness_step
async def none_of_the_events(context, name, device, receives, owner, owner_device):
    world = context.world
    await check_none_of_the_events(world.cast.actor(name).device(device).open_connection(),
                                   world.cast.actor(owner).device(owner_device).tunnel, world.cast.timeout,
                                   world.backstop)
