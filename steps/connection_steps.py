"""Connections: opening sockets from devices, what the handshake answered, how sockets end."""

import asyncio

from behave import given, then, when

from support.loop import harness_step
from support.questions import (
    check_closed_as, check_closed_after_expiry, check_distinct_sessions, check_published_marker,
    check_refusal_reveals_nothing, check_refused, check_sessions_recorded, check_socket_bound_to,
    check_still_usable, check_nothing_opened, check_mode,
)


@given("{name:Name} is signed in on {device:Device}")
@given("{name:Name} has signed in on {device:Device}")
@harness_step
async def signed_in(context, name, device):
    await context.world.cast.actor(name).sign_in(device)


@given("{name:Name} is connected from {devices:Devices}")
@given("{name:Name} has connected from {devices:Devices}")
@when("{name:Name} connects from {devices:Devices}")
@harness_step
async def connected_from(context, name, devices):
    """Open one socket per device, each on its own session, with the bearer header."""
    actor = context.world.cast.actor(name)
    connections = await asyncio.gather(*(actor.connect(device) for device in devices))
    context.world.last_handshake = connections[-1]


@given("{name:Name} is connected from {device:Device} through {instance:Instance}")
@when("{name:Name} connects from {device:Device} through {instance:Instance}")
@harness_step
async def connected_through(context, name, device, instance):
    cast = context.world.cast
    context.world.last_handshake = await cast.actor(name).connect(device, instance=cast.instance_at(instance))


@given("each of them is connected from {devices:Devices}")
@when("each of them connects from {devices:Devices}")
@harness_step
async def each_connected(context, devices):
    await context.world.cast.connect_each(context.world.members(), devices)


@when("{name:Name} connects from {device:Device} with the token in the {carrier:Carrier}")
@harness_step
async def connects_with_carrier(context, name, device, carrier):
    context.world.last_handshake = await context.world.cast.actor(name).connect(device, carrier)


@when("{name:Name} connects from {device:Device} to {endpoint:Address}")
@harness_step
async def connects_to_address(context, name, device, endpoint):
    context.world.last_handshake = await context.world.cast.actor(name).connect(device, endpoint=endpoint)


@given("{name:Name} is connected from {device:Device} with a token that expires in {seconds:Seconds}")
@harness_step
async def connected_with_short_token(context, name, device, seconds):
    cast = context.world.cast
    await cast.actor(name).connect_with_lifetime(device, seconds, cast.tokens)


@when("{name:Name} tries to connect from {device:Device} with {token:Token}")
@harness_step
async def tries_to_connect(context, name, device, token):
    """Attempt a handshake with no token or a deliberately bad one; keep the outcome."""
    world = context.world
    actor = world.cast.actor(name)
    world.last_handshake = await actor.try_connect_with(device, token)
    world.attempt = (name, device)


@when("{name:Name} tries to connect from {device:Device} to {owner:Name}'s personal socket address")
@harness_step
async def tries_foreign_address(context, name, device, owner):
    world = context.world
    owner_id = world.cast.actor(owner).user_id
    world.last_handshake = await world.cast.actor(name).try_connect(device, "bearer header", endpoint="user",
                                                                      path_user=owner_id)


@when("a developer connects as {name:Name} without a token")
@when("a developer tries to connect as {name:Name} without a token")
@harness_step
async def developer_login(context, name):
    context.world.last_handshake = await context.world.cast.actor(name).developer_login("laptop")


@when("a developer connects as {name:Name} from {device:Device} without a token")
@when("a developer tries to connect as {name:Name} from {device:Device} without a token")
@harness_step
async def developer_login_from(context, name, device):
    context.world.last_handshake = await context.world.cast.actor(name).developer_login(device)


@then("the socket belongs to {name:Name}'s {device:DeviceName} session")
@harness_step
async def socket_belongs_to(context, name, device):
    entry = context.world.cast.actor(name).device(device)
    check_socket_bound_to(entry.connection, entry.tokens.user_id, entry.tokens.session_id, str(entry))


@then("the socket belongs to {name:Name}")
@harness_step
async def socket_belongs_to_user(context, name):
    actor = context.world.cast.actor(name)
    check_socket_bound_to(context.world.last_handshake, actor.user_id, None, name)


@then("the service says it runs in {mode:Mode} mode")
@harness_step
async def runs_in_mode(context, mode):
    check_mode(context.world.cast.instance.config, mode)


@then("the service selected the marker protocol, never the token")
@harness_step
async def selected_marker(context):
    check_published_marker(context.world.last_handshake, context.world.cast.instance.config)


@then("the handshake {tense:Tense} refused with HTTP {statuses:Statuses}")
@harness_step
async def handshake_refused(context, tense, statuses):
    check_refused(context.world.last_handshake, statuses)


@then("no socket {tense:Tense} opened")
@harness_step
async def no_socket(context, tense):
    check_nothing_opened(context.world.last_handshake, context.world.cast.connections)


@then("the refusal says no more than a refusal without a token")
@harness_step
async def refusal_reveals_nothing(context):
    world = context.world
    refusal = check_refused(world.last_handshake, {401, 403})
    name, device = world.attempt
    baseline = await world.cast.actor(name).try_connect(device, None)
    check_refusal_reveals_nothing(refusal, check_refused(baseline, {401}))


@then("each of {name:Name}'s devices has its own session and socket")
@harness_step
async def own_sessions(context, name):
    actor = context.world.cast.actor(name)
    check_distinct_sessions(actor, list(actor.devices))


@then("the service records a session for each of {name:Name}'s devices")
@harness_step
async def sessions_recorded(context, name):
    actor = context.world.cast.actor(name)
    check_sessions_recorded(actor, await context.harness.database.sessions_of(actor.user_id))


# -- how sockets end, and proof that they did not --------------------------------------

@then('{name:Name}\'s {device:DeviceName} {tense:Tense} disconnected as "{code:Reason}"')
@harness_step
async def disconnected_as(context, name, device, tense, code):
    entry = context.world.cast.actor(name).device(device)
    await check_closed_as(entry.connection, code, context.world.cast.timeout)


@then('{name:Name}\'s {device:DeviceName} {tense:Tense} disconnected as "{code:Reason}" within {seconds:Seconds} '
      'of the expiry')
@harness_step
async def disconnected_after_expiry(context, name, device, tense, code, seconds):
    entry = context.world.cast.actor(name).device(device)
    await check_closed_after_expiry(entry, code, seconds, context.harness.clock())


@then("{name:Name}'s {device:DeviceName} {tense:Tense} still usable")
@harness_step
async def still_usable(context, name, device, tense):
    await check_still_usable(context.world.cast.actor(name).device(device), context.world.cast.timeout)


@then("{name:Name}'s {devices:DeviceNames} {stay:Stay} connected")
@harness_step
async def stay_connected(context, name, devices, stay):
    actor = context.world.cast.actor(name)
    await asyncio.gather(*(check_still_usable(actor.device(d), context.world.cast.timeout) for d in devices))


# -- app-level ping ---------------------------------------------------------------------

@when('{name:Name}\'s {device:DeviceName} sends a ping with the id "{message_id}"')
@harness_step
async def sends_ping(context, name, device, message_id):
    await context.world.cast.actor(name).device(device).ping(message_id)


@then('{name:Name}\'s {device:DeviceName} {receives:Receives} a "{kind:Code}" with the id "{message_id}"')
@harness_step
async def receives_reply(context, name, device, receives, kind, message_id):
    entry = context.world.cast.actor(name).device(device)
    await entry.received_on().wait_for(lambda f: f.type == kind and f.id == message_id,
                                           f'a "{kind}" with the id {message_id!r}', context.world.cast.timeout,
                                           entry.last_sent)
