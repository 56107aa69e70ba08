"""Handshakes under a crowd, and while the identity store is out of reach."""

import asyncio
import uuid

from behave import then, when

from support.connection import HandshakeRefused, RecordedConnection
from support.leaks import Party
from support.loop import harness_step
from support.phrases import register_phrases
from support.questions import check_refused

register_phrases()


@when("each of them connects at the same moment as {forged:d} handshakes with forged tokens")
@harness_step
async def crowd(context, forged):
    world = context.world
    instance = world.cast.instance
    people = [world.cast.actor(name) for name in world.notes["group"]]

    async def forged_handshake():
        token = context.harness.tokens.bad_token("wrong signature", str(uuid.uuid4()), str(uuid.uuid4()))
        connection = RecordedConnection(Party("Mallory", "mallory"), world.leak_detector)
        world.cast.connections.append(connection)
        try:
            return await connection.open(instance.socket_url(), carrier="bearer header", token=token,
                                         timeout=world.cast.timeout, origin=instance.default_origin)
        except HandshakeRefused as refusal:
            return refusal

    outcomes = await asyncio.gather(*(person.try_connect("laptop", "bearer header") for person in people),
                                    *(forged_handshake() for _ in range(forged)), return_exceptions=True)
    world.notes["crowd"] = (outcomes[:len(people)], outcomes[len(people):])


@then("each of them is connected")
@harness_step
async def each_connected(context):
    people, _ = context.world.notes["crowd"]
    failed = [o for o in people if not isinstance(o, RecordedConnection) or not o.is_open]
    if failed:
        raise AssertionError(f"{len(failed)} of {len(people)} people could not connect; first: {failed[0]!r}")


@then("every forged handshake is refused with HTTP 401")
@harness_step
async def forged_refused(context):
    _, forged = context.world.notes["crowd"]
    for outcome in forged:
        check_refused(outcome, {401})


@then("no handshake failed with a server error or close code 1011")
@harness_step
async def no_server_errors(context):
    people, forged = context.world.notes["crowd"]
    bad = [o for o in people + forged
           if isinstance(o, Exception) and not (isinstance(o, HandshakeRefused) and o.status < 500)
           or isinstance(o, RecordedConnection) and o.close_code == 1011]
    if bad:
        raise AssertionError(f"{len(bad)} handshakes failed with a server error or 1011; first: {bad[0]!r}")


@when("the identity store becomes unreachable for the service")
@harness_step
async def store_unreachable(context):
    context.harness.store_proxy.cut()


@when("the identity store is reachable again")
@harness_step
async def store_back(context):
    context.harness.store_proxy.restore()


@then("{name:Name}'s handshakes are refused with HTTP 503, never accepted")
@harness_step
async def refused_while_down(context, name):
    actor = context.world.cast.actor(name)
    for _ in range(4):
        check_refused(await actor.try_connect("laptop", "bearer header"), {503})


@then("after repeated failures the service stops trying the identity store for a while")
@harness_step
async def breaker_open(context):
    world = context.world
    health = await world.cast.instance.security_health(any_status=True)
    state = (health.get("identity_store") or {}).get("state")
    if state != "open":
        raise AssertionError(f"the service reports its identity store breaker as {state!r}; expected 'open': {health}")
    proxy = context.harness.store_proxy
    attempts = proxy.attempts
    actor = world.cast.actors[0]
    for _ in range(3):
        check_refused(await actor.try_connect("laptop", "bearer header"), {503})
    if proxy.attempts != attempts:
        raise AssertionError(f"the service tried the identity store {proxy.attempts - attempts} more times "
                             f"while its breaker was open")


@then("{name:Name} can connect from {device:Device} again within the advertised cool-down")
@harness_step
async def connects_after_recovery(context, name, device):
    world = context.world
    cooldown = world.cast.instance.config.get("timeouts", {}).get("identity_store_cooldown_seconds", 30)
    deadline = asyncio.get_running_loop().time() + cooldown + 3
    actor = world.cast.actor(name)
    while True:
        outcome = await actor.try_connect(device, "bearer header")
        if isinstance(outcome, RecordedConnection):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{name} still cannot connect {cooldown + 3:g} s after the identity store came back: "
                                 f"{outcome}")
        await asyncio.sleep(0.1)
