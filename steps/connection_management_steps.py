"""Connection management: the per-user limit, heartbeats, clean-up after disconnects."""

import asyncio
import time

from behave import given, then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import check_published, check_tabs_after_limit

register_phrases()


@given("{name:Name} may keep at most {count:d} connections open")
@then("{name:Name} may keep at most {count:d} connections open")
@harness_step
async def connection_limit(context, name, count):
    plan = context.world.cast.actor(name).plan
    for instance in context.world.cast.instances:
        check_published(instance.config, "connections per user", count, plan)
    context.world.notes["connection limit"] = count


@when("{name:Name} opens {count:d} tabs on {device:Device} at the same moment")
@harness_step
async def opens_tabs(context, name, count, device):
    await open_tabs(context, name, count, device, [context.world.cast.instance])


@when("{name:Name} opens {count:d} tabs on {device:Device} at the same moment, spread over two instances")
@harness_step
async def opens_tabs_on_two_instances(context, name, count, device):
    await open_tabs(context, name, count, device, context.world.cast.instances[:2])


async def open_tabs(context, name, count, device, instances):
    """Open ``count`` sockets of one session at once, taking the instances in turn."""
    actor = context.world.cast.actor(name)
    await actor.sign_in(device)
    # welcome=False: a tab may be closed by the limit before its welcome frame is read
    await asyncio.gather(*(actor.connect(device, instance=instances[n % len(instances)], welcome=False)
                           for n in range(count)))
    context.world.notes["tabs"] = list(actor.device(device).tabs)


@then("exactly {count:d} of {name:Name}'s tabs stay connected")
@harness_step
async def tabs_stay_connected(context, count, name):
    await check_tabs_after_limit(context.world.notes["tabs"], count, context.world.cast.timeout,
                                context.harness.settings.backstop_seconds)


@then('the others are disconnected as "{code:Reason}"')
@harness_step
async def others_disconnected(context, code):
    closed = [tab for tab in context.world.notes["tabs"] if not tab.is_open]
    wrong = [tab for tab in closed if tab.close_code != code]
    if not closed or wrong:
        raise AssertionError(f"{len(wrong)} of {len(closed)} closed tabs were closed with another code than "
                             f"{code}: {[tab.close_code for tab in wrong]}")


@when("{name:Name}'s {device:DeviceName} connects and then stops answering heartbeats")
@harness_step
async def silent_client(context, name, device):
    world = context.world
    context.world.notes["silent"] = await world.cast.actor(name).silent_connection(device, world.cast.instance)


@then("{name:Name}'s {device:DeviceName} received heartbeats at the advertised interval")
@harness_step
async def heartbeats_at_interval(context, name, device):
    client = context.world.notes["silent"]
    interval = context.world.cast.instance.config["heartbeat"]["interval_seconds"]
    if not client.pings:
        waited = (client.closed_at or time.monotonic()) - client.opened_at
        raise AssertionError(f"{name}'s {device} received no heartbeat in {waited:.1f} s; "
                             f"the service advertises one every {interval} s")
    gaps = [b - a for a, b in zip([client.opened_at] + client.pings, client.pings)]
    late = [gap for gap in gaps if gap > interval * 1.5 + 0.25]
    if late:
        raise AssertionError(f"heartbeats came {', '.join(f'{g:.2f}' for g in gaps)} s apart; "
                             f"the service advertises one every {interval} s")


@then("{name:Name}'s {device:DeviceName} was disconnected within the advertised heartbeat timeout")
@harness_step
async def disconnected_after_timeout(context, name, device):
    client = context.world.notes["silent"]
    timeout = context.world.cast.instance.config["heartbeat"]["timeout_seconds"]
    if client.closed_at is None:
        raise AssertionError(f"{name}'s {device} never answered a heartbeat, and the service still had not "
                             f"disconnected it {time.monotonic() - client.opened_at:.1f} s later "
                             f"(advertised timeout {timeout} s)")
    if not client.pings:
        raise AssertionError(f"{name}'s {device} was disconnected without ever being sent a heartbeat")
    waited = client.closed_at - client.pings[0]
    if waited > timeout * 1.5 + 0.5:
        raise AssertionError(f"{name}'s {device} stayed connected {waited:.1f} s after its first unanswered "
                             f"heartbeat; the service advertises a timeout of {timeout} s")


@when("{name:Name}'s {device:DeviceName} disconnects")
@harness_step
async def disconnects(context, name, device):
    instance = context.world.cast.instance
    context.world.notes["open before"] = (await instance.security_health())["connections"]["open"]
    await context.world.cast.actor(name).device(device).connection.close()


@then("the service stops counting {name:Name}'s {device:DeviceName}'s socket within {seconds:d} seconds")
@harness_step
async def stops_counting(context, name, device, seconds):
    before = context.world.notes["open before"]
    await context.world.cast.instance.wait_for_open_count(lambda n: n <= before - 1, seconds,
                                                          f"fewer than {before} open sockets")


@when("a client opens a connection and {behaviour}")
@harness_step
async def half_open(context, behaviour):
    instance = context.world.cast.instance
    limit = instance.config["timeouts"]["handshake_seconds"]
    context.world.notes["dropped after"] = await instance.idle_connection(behaviour, timeout=limit + 3)


@then("the service drops it within the advertised handshake timeout")
@harness_step
async def dropped_in_time(context):
    limit = context.world.cast.instance.config["timeouts"]["handshake_seconds"]
    dropped_after = context.world.notes["dropped after"]
    if dropped_after is None or dropped_after > limit + 1:
        shown = "was still open" if dropped_after is None else f"was dropped after {dropped_after:.1f} s"
        raise AssertionError(f"the unfinished connection {shown}; the service advertises a handshake timeout of {limit} s")


@given("{count:d} people have accounts on the {plan} plan")
@harness_step
async def many_accounts(context, count, plan):
    cast = context.world.cast
    names = [f"Visitor{number:03d}" for number in range(1, count + 1)]
    await asyncio.gather(*(cast.actor(name).sign_up(plan.lower()) for name in names))
    context.world.notes["group"] = names


@when("each of them connects and disconnects {times:d} times")
@harness_step
async def churn(context, times):
    world = context.world
    instance = world.cast.instance
    health = await instance.security_health()
    world.notes["baseline"] = (health["connections"]["open"], health["memory_rss_bytes"])
    await asyncio.gather(*(world.cast.actor(name).churn("laptop", times) for name in world.notes["group"]))


@then("the service's open connection count is back where it started within {seconds:d} seconds")
@harness_step
async def count_back(context, seconds):
    baseline = context.world.notes["baseline"][0]
    await context.world.cast.instance.wait_for_open_count(lambda n: n <= baseline, seconds,
                                                          f"at most {baseline} open sockets, as before")


@then("the service's memory has grown by less than {megabytes:d} MB")
@harness_step
async def memory_growth(context, megabytes):
    before = context.world.notes["baseline"][1]
    after = (await context.world.cast.instance.security_health())["memory_rss_bytes"]
    grown = (after - before) / 1024 / 1024
    print(f"memory: {before / 2**20:.1f} MB before, {after / 2**20:.1f} MB after ({grown:+.1f} MB)")
    if grown >= megabytes:
        raise AssertionError(f"the service's memory grew by {grown:.1f} MB; expected less than {megabytes} MB")
