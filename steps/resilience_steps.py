"""Resilience: comings and goings, abandoned handshakes, and being counted right afterwards."""

from behave import then, when

from support.loop import harness_step
from support.questions import check_tabs_after_limit


@when("{name:Name} connects from {device:Device} and disconnects {times:Times}")
@harness_step
async def connects_and_disconnects(context, name, device, times):
    world = context.world
    await world.note_connection_baseline()
    await world.cast.actor(name).churn(device, times)


@when("{name:Name} abandons {count:Handshakes} halfway on {device:Device}")
@harness_step
async def abandons_handshakes(context, name, count, device):
    """Valid upgrade requests, each hung up on before the service answers."""
    world = context.world
    await world.note_connection_baseline()
    await world.cast.actor(name).abandon_handshakes(device, count)


@when("{name:Name} closes every tab on {device:Device}")
@harness_step
async def closes_every_tab(context, name, device):
    await context.world.cast.actor(name).close_tabs(device)


@then("{name:Name} can open {count:Tabs} on {device:Device} at the same moment and keep every one")
@harness_step
async def keeps_every_tab(context, name, count, device):
    """Counted right: as many new tabs as the limit open at once, and the service closes none."""
    world = context.world
    tabs = await world.cast.actor(name).open_tabs(device, count, [world.cast.instance])
    await check_tabs_after_limit(tabs, count, world.cast.timeout, world.backstop)
