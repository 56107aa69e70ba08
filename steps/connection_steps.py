"""Connections: opening sockets from devices, what the handshake answered, how sockets end."""

import asyncio

from behave import given, then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import (
    check_closed_as, check_distinct_sessions, check_refusal_reveals_nothing, check_refused,
    check_sessions_recorded, check_socket_bound_to, check_still_usable,
)

register_phrases()


@given("{name:Name} is signed in on {device:Device}")
@harness_step
async def signed_in(context, name, device):
    await context.world.cast.actor(name).sign_in(device)


@given("{name:Name} is connected from {devices:Devices}")
@when("{name:Name} connects from {devices:Devices}")
@harness_step
async def connected_from(context, name, devices):
    """Open one socket per device, each on its own session, with the bearer header."""
    actor = context.world.cast.actor(name)
    connections = await asyncio.gather(*(actor.connect(device) for device in devices))
    context.world.last_handshake = connections[-1]


@given("each of them is connected from their {device:DeviceName}")
@harness_step
async def each_connected(context, device):
    cast = context.world.cast
    await asyncio.gather(*(cast.actor(name).connect(device) for name in context.world.notes["group"]))


@when("{name:Name} connects from {device:Device} with the token in the {carrier}")
@harness_step
async def connects_with_carrier(context, name, device, carrier):
    context.world.last_handshake = await context.world.cast.actor(name).connect(device, carrier)


@when("{name:Name} connects from {device:Device} to {endpoint:Address}")
@harness_step
async def connects_to_address(context, name, device, endpoint):
    context.world.last_handshake = await context.world.cast.actor(name).connect(device, endpoint=endpoint)


@given("{name:Name} is connected from {device:Device} with a token that expires in {seconds:d} seconds")
@harness_step
async def connected_with_short_token(context, name, device, seconds):
    actor = context.world.cast.actor(name)
    entry = await actor.sign_in(device)
    token = context.harness.tokens.mint(entry.tokens.user_id, entry.tokens.session_id, lifetime=seconds)
    context.harness.redactor.register(token, "access token")
    await actor.connect(device, token=token)
    context.world.notes["token expiry"] = context.harness.tokens.expiry(token)


@when("{name:Name} tries to connect from {device:Device} with {token:Token}")
@harness_step
async def tries_to_connect(context, name, device, token):
    """Attempt a handshake with no token or a deliberately bad one; keep the outcome."""
    world = context.world
    actor = world.cast.actor(name)
    entry = await actor.sign_in(device)
    if token is None:
        world.last_handshake = await actor.try_connect(device, None)
    else:
        bad = context.harness.tokens.bad_token(token, entry.tokens.user_id, entry.tokens.session_id)
        world.last_handshake = await actor.try_connect(device, "bearer header", bad)
    world.notes["attempt"] = (name, device)


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
    actor = context.world.cast.actor(name)
    context.world.last_handshake = await actor.try_connect("laptop", None, headers={"X-Dev-User": actor.email})


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


@then("the service says it runs in {mode} mode")
@harness_step
async def runs_in_mode(context, mode):
    published = context.world.cast.instance.config.get("mode")
    if published != mode:
        raise AssertionError(f"the service's config document says mode {published!r}; expected {mode!r}")


@then("the service selected the marker protocol, never the token")
@harness_step
async def selected_marker(context):
    connection = context.world.last_handshake
    if connection.subprotocol != "jwt-auth":
        raise AssertionError(f"the service selected the subprotocol {connection.subprotocol!r} "
                             f"for {connection.owner}; expected exactly 'jwt-auth'")


@then("the handshake is refused with HTTP {statuses:Statuses}")
@harness_step
async def handshake_refused(context, statuses):
    check_refused(context.world.last_handshake, statuses)


@then("no socket was opened")
@harness_step
async def no_socket(context):
    check_refused(context.world.last_handshake, {401, 403})
    opened = [c for c in context.world.cast.connections if c.subprotocol or c.is_open]
    if opened:
        raise AssertionError(f"a socket was opened for {opened[0].owner}")


@then("the refusal says no more than a refusal without a token")
@harness_step
async def refusal_reveals_nothing(context):
    world = context.world
    refusal = check_refused(world.last_handshake, {401, 403})
    name, device = world.notes["attempt"]
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

@then('{name:Name}\'s {device:DeviceName} is disconnected as "{code:Reason}"')
@harness_step
async def disconnected_as(context, name, device, code):
    entry = context.world.cast.actor(name).device(device)
    await check_closed_as(entry.connection, code, context.world.cast.timeout)


@then('{name:Name}\'s {device:DeviceName} is disconnected as "{code:Reason}" within {seconds:d} seconds of the expiry')
@harness_step
async def disconnected_after_expiry(context, name, device, code, seconds):
    entry = context.world.cast.actor(name).device(device)
    expiry = context.world.notes["token expiry"]
    await check_closed_as(entry.connection, code, timeout=expiry + seconds + 1 - context.harness.clock())
    late = entry.connection.closed_at - expiry
    if late > seconds:
        raise AssertionError(f"{entry} was disconnected {late:.1f} s after its token expired; expected within {seconds} s")
    if late < -0.5:
        raise AssertionError(f"{entry} was disconnected {-late:.1f} s before its token expired")


@then("{name:Name}'s {device:DeviceName} is still usable")
@harness_step
async def still_usable(context, name, device):
    await check_still_usable(context.world.cast.actor(name).device(device), context.world.cast.timeout)


@then("{name:Name}'s {devices:DeviceNames} stay connected")
@then("{name:Name}'s {devices:DeviceNames} stays connected")
@harness_step
async def stay_connected(context, name, devices):
    actor = context.world.cast.actor(name)
    await asyncio.gather(*(check_still_usable(actor.device(d), context.world.cast.timeout) for d in devices))


# -- app-level ping ---------------------------------------------------------------------

@when('{name:Name}\'s {device:DeviceName} sends a ping with the id "{message_id}"')
@harness_step
async def sends_ping(context, name, device, message_id):
    connection = context.world.cast.actor(name).device(device).connection
    context.world.notes["sent at"] = await connection.send({"type": "ping", "id": message_id, "payload": {}})


@then('{name:Name}\'s {device:DeviceName} receives a "{kind:Code}" with the id "{message_id}"')
@harness_step
async def receives_reply(context, name, device, kind, message_id):
    connection = context.world.cast.actor(name).device(device).connection
    await connection.wait_for(lambda f: f.type == kind and f.id == message_id,
                              f'a "{kind}" with the id {message_id!r}', context.world.cast.timeout,
                              context.world.notes.get("sent at", 0))
