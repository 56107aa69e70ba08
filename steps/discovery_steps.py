"""Discovery: what the service publishes about itself."""

from behave import then, when

from support.loop import harness_step
from support.questions import (
    check_carriers_offered, check_healthy, check_heartbeat_within, check_mode_published, check_no_secret,
    check_security_fields, check_settings_published,
)


@when("a client reads the service's published configuration")
@harness_step
async def reads_configuration(context):
    context.world.published = await context.world.cast.instance.api.config_document()


@then("the configuration publishes these settings:")
@harness_step
async def publishes_settings(context):
    check_settings_published(context.world.published, [row["setting"] for row in context.table])


@then("it offers these ways to present a token:")
@harness_step
async def offers_carriers(context):
    check_carriers_offered(context.world.published, [row["carrier"] for row in context.table])


@then("it says whether it runs in development or production mode")
@harness_step
async def publishes_mode(context):
    check_mode_published(context.world.published)


@then("the heartbeat is sent at least every {seconds:Seconds}")
@harness_step
async def heartbeat_within(context, seconds):
    check_heartbeat_within(context.world.published, seconds)


@when("a client reads the service's published security settings")
@harness_step
async def reads_security(context):
    context.world.security = await context.world.cast.instance.api.document("/ws/secure/config",
                                                                            "the security document")


@then("they name the authentication methods, the allowed origins and the signing algorithms")
@harness_step
async def security_names(context):
    check_security_fields(context.world.security, ("auth_methods", "allowed_origins", "algorithms"))


@then("they contain no secret")
@harness_step
async def no_secret(context):
    check_no_secret(context.world.security, context.harness.settings.jwt_secret)


@when("an operator reads the service's security health")
@harness_step
async def reads_health(context):
    context.world.health = await context.world.cast.instance.security_health()


@then("the database, Redis and token verification are reported healthy")
@harness_step
async def reported_healthy(context):
    check_healthy(context.world.health, ("database", "redis", "token_verification"))
