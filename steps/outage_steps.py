"""Outages of the database and Redis at chosen moments, and an instance filled to its capacity."""

from behave import given, then, when

from support.loop import harness_step
from support.outages import (
    check_answers_ping, check_capacity, check_delivers_again, check_refused_as, cut_during, operation,
)
from support.questions import check_closed_as


def _cut_short(context, name):
    """What the outage cut short, refused when the sentence names someone else."""
    done = context.world.interrupted
    if done.actor.name != name:
        raise AssertionError(f"the outage cut short {done}, not anything of {name}'s")
    return done


@when("{store:IdentityStore} becomes unreachable while {name:Name} {what:Operation}")
@harness_step
async def cut_while(context, store, name, what):
    """The database link fails at the moment the operation writes, and stays down."""
    world = context.world
    world.interrupted = await cut_during(context.harness.cuttable_store(), operation(what),
                                         world.cast.actor(name), context.harness.database)


@then("{name:Name} {tense:Tense} told to try again later")
@harness_step
async def told_to_retry(context, name, tense):
    done = _cut_short(context, name)
    await done.operation.check_told(done, context.world.cast.timeout)


@then("what {name:Name} was doing {tense:Tense} recorded completely or not at all")
@harness_step
async def all_or_nothing(context, name, tense):
    done = _cut_short(context, name)
    await done.operation.check_all_or_nothing(done, context.harness.database)


@then("{name:Name} succeeds when {she:She} tries again")
@harness_step
async def succeeds_again(context, name, she):
    done = _cut_short(context, name)
    await done.operation.check_again(done, context.harness.database)


@when("Redis becomes unreachable for the service")
@when("Redis goes down")
@harness_step
async def redis_unreachable(context):
    context.harness.cuttable_redis().cut()


@when("Redis is reachable again")
@when("Redis comes back")
@harness_step
async def redis_back(context):
    context.harness.cuttable_redis().restore()


@then("{name:Name}'s {device:DeviceName} still answers a ping")
@harness_step
async def answers_ping(context, name, device):
    await check_answers_ping(context.world.cast.actor(name).device(device), context.world.cast.timeout)


@then("{name:Name}'s {device:DeviceName} {receives:Receives} events again within {seconds:Seconds}")
@harness_step
async def delivers_again(context, name, device, receives, seconds):
    await check_delivers_again(context.world.cast.actor(name).device(device), seconds, context.world.cast.timeout)


@then('every tab on {name:Name}\'s {device:DeviceName} {tense:Tense} disconnected as "{code:Reason}"')
@harness_step
async def every_tab_disconnected(context, name, device, tense, code):
    for tab in context.world.cast.actor(name).device(device).tabs:
        await check_closed_as(tab, code, context.world.cast.timeout)


@given("the service accepts at most {count:Connections} at once")
@harness_step
async def capacity(context, count):
    await check_capacity(context.world.cast.instance, count)


@when("{name:Name} tries to connect from {device:Device}")
@harness_step
async def tries_plainly(context, name, device):
    context.world.last_handshake = await context.world.cast.actor(name).try_connect(device, "bearer header")


@then('the handshake {tense:Tense} refused with HTTP {statuses:Statuses} as "{code:Code}"')
@harness_step
async def refused_as(context, tense, statuses, code):
    check_refused_as(context.world.last_handshake, statuses, code)
