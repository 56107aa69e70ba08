"""Handshakes under a crowd, and while the identity store is out of reach."""

from behave import then, when

from support.loop import harness_step
from support.questions import (
    check_breaker_open, check_crowd_connected, check_crowd_refused, check_no_server_errors, check_refused,
    connect_after_recovery,
)


@when("each of them connects at the same moment as {forged:Handshakes} with forged tokens")
@harness_step
async def crowd(context, forged):
    world = context.world
    world.crowd = await world.cast.crowd(world.members(), forged)


@then("each of them {tense:Tense} connected")
@harness_step
async def each_connected(context, tense):
    check_crowd_connected(context.world.crowd)


@then("every forged handshake {tense:Tense} refused with HTTP {statuses:Statuses}")
@harness_step
async def forged_refused(context, tense, statuses):
    check_crowd_refused(context.world.crowd, statuses)


@then("no handshake failed with a server error or close code 1011")
@harness_step
async def no_server_errors(context):
    check_no_server_errors(context.world.crowd)


@when("{store:IdentityStore} becomes unreachable for the service")
@when("{store:IdentityStore} becomes unreachable")
@when("{store:IdentityStore} goes down")
@harness_step
async def store_unreachable(context, store):
    context.harness.cuttable_store().cut()


@when("{store:IdentityStore} is reachable again")
@when("{store:IdentityStore} comes back")
@harness_step
async def store_back(context, store):
    context.harness.cuttable_store().restore()


@then("{name:Name}'s handshakes are refused with HTTP {statuses:Statuses}, never accepted")
@harness_step
async def refused_while_down(context, name, statuses):
    actor = context.world.cast.actor(name)
    for _ in range(4):
        check_refused(await actor.try_connect(actor.any_device_name(), "bearer header"), statuses)


@then("after repeated failures the service stops trying {store:IdentityStore} for a while")
@harness_step
async def breaker_open(context, store):
    world = context.world
    await check_breaker_open(world.cast.instance, context.harness.cuttable_store(), world.cast.actors[0])


@then("{name:Name} can connect from {device:Device} again within the advertised cool-down")
@harness_step
async def connects_after_recovery(context, name, device):
    world = context.world
    await connect_after_recovery(world.cast.actor(name), device, world.cast.instance)
