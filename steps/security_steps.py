"""Security: forged tokens, odd handshakes, foreign origins, abusive messages, broken frames.

Each step names an attack of the catalogue (support/attacks.py, support/message_abuse.py,
support/raw_frames.py) and hands it to the harness, which tries it and checks the answers.
"""

from behave import given, then, when

from support.attacks import check_normal_handshake, check_refused_everywhere, desk_of
from support.loop import harness_step
from support.message_abuse import check_answered, check_still_governed, send_abuse, send_every_abuse
from support.raw_frames import BREACHES, breach, check_answers, check_closed_with


@given("an attacker runs a key server of their own")
@harness_step
async def attacker_key_server(context):
    await desk_of(context.world).start_key_server()


@when("an attacker presents {attack:ForgedToken} for {name:Name} in every carrier at every address")
@harness_step
async def presents_forged_token(context, attack, name):
    desk = desk_of(context.world)
    desk.attack_run = await desk.bench(context.world.cast.actor(name)).forged_everywhere(attack)


@when("an attacker opens a handshake with {shape:HandshakeShape} for {name:Name} at every address")
@harness_step
async def odd_handshake(context, shape, name):
    desk = desk_of(context.world)
    desk.attack_run = await desk.bench(context.world.cast.actor(name)).shape_everywhere(shape)


@when("a page from {origin:LookAlike} opens a socket with {name:Name}'s token in every carrier at every address")
@harness_step
async def look_alike_origin(context, origin, name):
    desk = desk_of(context.world)
    desk.attack_run = await desk.bench(context.world.cast.actor(name)).origin_everywhere(origin)


@then("every attempt {tense:Tense} refused with HTTP {statuses:Statuses} before any socket opens, "
      "saying no more than a plain refusal")
@harness_step
async def refused_everywhere(context, tense, statuses):
    check_refused_everywhere(desk_of(context.world).attack_run, statuses)


@then("the attacker's key server {tense:Tense} never asked for a key")
@harness_step
async def key_server_never_asked(context, tense):
    desk = desk_of(context.world)
    desk.key_server.check_never_asked(repr(desk.attack_run.attack))


@then("{name:Name}'s own token still opens a socket")
@harness_step
async def own_token_still_works(context, name):
    desk = desk_of(context.world)
    check_normal_handshake(await desk.bench(context.world.cast.actor(name)).normal_handshake(), name)


# -- messages that abuse the parser (LIM-05) ------------------------------------------------

@when("each of {name:Name}'s devices sends {abuse:Abuse}")
@harness_step
async def each_device_sends_abuse(context, name, abuse):
    actor = context.world.cast.actor(name)
    devices = actor.connected_devices()
    if not devices:
        raise AssertionError(f"{name} is connected from no device; connect her first")
    desk_of(context.world).abuse = (abuse, [(device, *await send_abuse(device.open_connection(), abuse))
                                            for device in devices])


@then("each of {name:Name}'s devices {tense:Tense} answered with {answer:AbuseAnswer} and stays connected")
@harness_step
async def each_device_answered(context, name, tense, answer):
    abuse, sent = desk_of(context.world).abuse
    for device, since, ids in sent:
        if device.actor.name != name:
            raise AssertionError(f"{device} sent {abuse}, not {name}'s devices")
        await check_answered(device.connection, abuse, answer, since, ids, context.world.cast.timeout)


@then("{name:Name}'s sockets are still closed by the connection limit and on sign-out")
@harness_step
async def still_governed(context, name):
    await check_still_governed(context.world.cast.actor(name), context.world.cast.timeout)


@when("{name:Name}'s {device:DeviceName} sends every kind of abusive message")
@harness_step
async def sends_every_abuse(context, name, device):
    await send_every_abuse(context.world.cast.actor(name).device(device).open_connection(), context.world.cast.timeout)


# -- frames that break the WebSocket protocol (LIM-06) ----------------------------------------

@when("{name:Name}'s {device:DeviceName} sends the service {case:ProtocolCase} (Autobahn {group:Autobahn})")
@harness_step
async def sends_protocol_case(context, name, device, case, group):
    frames = breach(case, group).frames(context.world.cast.instance.config["limits"]["max_message_bytes"])
    desk = desk_of(context.world)
    client = await desk.open_raw_client(context.world.cast.actor(name), device)
    desk.breach = case
    await client.send(*frames)


@then("{name:Name}'s {device:DeviceName} {tense:Tense} disconnected with close code {code:CloseCode}")
@harness_step
async def disconnected_with_code(context, name, device, tense, code):
    desk = desk_of(context.world)
    await check_closed_with(desk.raw_client_of(context.world.cast.actor(name), device), desk.breach, code,
                            context.world.cast.timeout)


@then("{name:Name}'s {device:DeviceName} gets every answer and stays connected")
@harness_step
async def raw_answered(context, name, device):
    desk = desk_of(context.world)
    await check_answers(desk.raw_client_of(context.world.cast.actor(name), device), desk.breach,
                        BREACHES[desk.breach].answers, context.world.cast.timeout)
