"""Start-up: a production instance never runs with a signing secret others know."""

from behave import then, when

from support.loop import harness_step
from support.start_up import check_refused_to_start, check_started_quietly, check_started_with_warning, start_instance


@when("a {mode:Mode} instance is started with {secret:StartSecret}")
@harness_step
async def instance_started_with(context, mode, secret):
    harness = context.harness
    context.world.start_attempt = (await start_instance(harness.services, harness.settings, mode, secret), secret)


@then("it refuses to start, saying why in one line")
@harness_step
async def refuses_to_start(context):
    attempt, secret = context.world.start_attempt
    check_refused_to_start(attempt, secret)


@then("it starts, with one warning about its signing secret")
@harness_step
async def starts_with_warning(context):
    check_started_with_warning(context.world.start_attempt[0])


@then("it starts without a complaint")
@harness_step
async def starts_quietly(context):
    check_started_quietly(context.world.start_attempt[0])
