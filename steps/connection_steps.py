"""Connections: opening sockets from devices, and what the handshake answered."""

import asyncio

from behave import given, then, when

from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import (
    check_distinct_sessions, check_refusal_reveals_nothing, check_sessions_recorded, check_refused, check_socket_bound_to,
)

register_phrases()


@given("{name:Name} is connected from {devices:Devices}")
@when("{name:Name} connects from {devices:Devices}")
@harness_step
async def connected_from(context, name, devices):
    """Open one socket per device, each on its own session, with the bearer header."""
    actor = context.world.cast.actor(name)
    connections = await asyncio.gather(*(actor.connect(device) for device in devices))
    context.world.last_handshake = connections[-1]


@given("each of them is connected from their {device}")
@harness_step
async def each_connected(context, device):
    cast = context.world.cast
    await asyncio.gather(*(cast.actor(name).connect(device) for name in context.world.notes["group"]))


@when("{name:Name} connects from {device:Device} with the token in the {carrier}")
@harness_step
async def connects_with_carrier(context, name, device, carrier):
    actor = context.world.cast.actor(name)
    context.world.last_handshake = await actor.connect(device, carrier)


@when("{name:Name} tries to connect from {device:Device} with {token:Token}")
@harness_step
async def tries_to_connect(context, name, device, token):
    """Attempt a handshake with no token or a deliberately bad one; keep the outcome."""
    world = context.world
    actor = world.cast.actor(name)
    entry = await actor.sign_in(device)
    if token is None:
        world.last_handshake = await actor.try_connect(device, None, None)
    else:
        bad = context.harness.tokens.bad_token(token, entry.tokens.user_id, entry.tokens.session_id)
        world.last_handshake = await actor.try_connect(device, "bearer header", bad)
    world.notes["attempt"] = (name, device)


@then("the socket belongs to {name:Name}'s {device} session")
@harness_step
async def socket_belongs_to(context, name, device):
    entry = context.world.cast.actor(name).device(device)
    check_socket_bound_to(entry.connection, entry)


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
    baseline = await world.cast.actor(name).try_connect(device, None, None)
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
