"""Connection management: the per-user limit, heartbeats, clean-up after disconnects."""

import asyncio

from behave import given, then, when

from support.loop import harness_step
from support.questions import (
    check_closed_with, check_dropped_in_time, check_heartbeat_timeout, check_heartbeats, check_memory_growth,
    check_published, check_tabs_after_limit,
)


@given("{name:Name} may keep at most {count:Connections} open")
@then("{name:Name} may keep at most {count:Connections} open")
@harness_step
async def connection_limit(context, name, count):
    plan = context.world.cast.actor(name).plan
    for instance in context.world.cast.instances:
        check_published(instance.config, "connections per user", count, plan)
    context.world.connection_limit = count


@when("{name:Name} opens {count:Tabs} on {device:Device} at the same moment")
@harness_step
async def opens_tabs(context, name, count, device):
    await context.world.note_connection_baseline()
    context.world.tabs = await context.world.cast.actor(name).open_tabs(device, count, [context.world.cast.instance])


@when("{name:Name} opens {count:Tabs} on {device:Device} at the same moment, spread over {instances:Count} instances")
@harness_step
async def opens_tabs_on_instances(context, name, count, device, instances):
    cast = context.world.cast
    spread = [cast.instance_at(position) for position in range(1, instances + 1)]
    context.world.tabs = await cast.actor(name).open_tabs(device, count, spread)


@then("exactly {count:Count} of {name:Name}'s tabs {stay:Stay} connected")
@harness_step
async def tabs_stay_connected(context, count, name, stay):
    world = context.world
    await check_tabs_after_limit(world.tabs, count, world.cast.timeout, world.backstop)


@then('the others {tense:Tense} disconnected as "{code:Reason}"')
@harness_step
async def others_disconnected(context, tense, code):
    check_closed_with([tab for tab in context.world.tabs if not tab.is_open], code)


@when("{name:Name}'s {device:DeviceName} connects and then stops answering heartbeats")
@harness_step
async def silent_client(context, name, device):
    world = context.world
    await world.cast.actor(name).connect_silently(device, world.cast.instance)


@then("{name:Name}'s {device:DeviceName} {receives:Receives} heartbeats at the advertised interval")
@harness_step
async def heartbeats_at_interval(context, name, device, receives):
    entry = context.world.cast.actor(name).device(device)
    check_heartbeats(entry, entry.silent_client, context.world.cast.instance.config["heartbeat"]["interval_seconds"])


@then("{name:Name}'s {device:DeviceName} {tense:Tense} disconnected within the advertised heartbeat timeout")
@harness_step
async def disconnected_after_timeout(context, name, device, tense):
    entry = context.world.cast.actor(name).device(device)
    check_heartbeat_timeout(entry, entry.silent_client, context.world.cast.instance.config["heartbeat"]["timeout_seconds"])


@when("{name:Name}'s {device:DeviceName} disconnects")
@harness_step
async def disconnects(context, name, device):
    await context.world.cast.actor(name).device(device).disconnect(context.world.cast.instance)


@then("the service stops counting {name:Name}'s {device:DeviceName}'s socket within {seconds:Seconds}")
@harness_step
async def stops_counting(context, name, device, seconds):
    entry = context.world.cast.actor(name).device(device)
    await context.world.cast.instance.wait_for_open_count(lambda n: n <= entry.open_before - 1, seconds,
                                                          f"fewer than {entry.open_before} open sockets")


@when("a client opens a connection and {behaviour:Stall}")
@harness_step
async def half_open(context, behaviour):
    instance = context.world.cast.instance
    limit = instance.config["timeouts"]["handshake_seconds"]
    context.world.dropped_after = await instance.idle_connection(behaviour, timeout=limit + 3)


@then("the service drops it within the advertised handshake timeout")
@harness_step
async def dropped_in_time(context):
    check_dropped_in_time(context.world.dropped_after, context.world.cast.instance.config["timeouts"]["handshake_seconds"])


@when("each of them connects and disconnects {times:Times}")
@when("each of them connects from {device:Device} and disconnects {times:Times}")
@harness_step
async def churn(context, times, device="laptop"):
    """Everyone connects and disconnects, one after the other (from the laptop unless a device is named)."""
    world = context.world
    await world.note_connection_baseline()
    await asyncio.gather(*(actor.churn(device, times) for actor in world.members()))


@then("the service's open connection count is back where it started within {seconds:Seconds}")
@harness_step
async def count_back(context, seconds):
    baseline = context.world.churn_baseline[0]
    await context.world.cast.instance.wait_for_open_count(lambda n: n <= baseline, seconds,
                                                          f"at most {baseline} open sockets, as before")


@then("the service's memory has grown by less than {megabytes:Megabytes}")
@harness_step
async def memory_growth(context, megabytes):
    after = (await context.world.cast.instance.security_health())["memory_rss_bytes"]
    check_memory_growth(context.world.churn_baseline[1], after, megabytes)
