"""Discovery: what the service publishes about itself."""

from behave import then, when

from support.loop import harness_step
from support.phrases import CARRIER_METHODS, register_phrases
from support.questions import check_no_secret, published_setting

register_phrases()


@when("a client reads the service's published configuration")
@harness_step
async def reads_configuration(context):
    context.world.notes["config"] = await context.world.cast.instance.api.config_document()


@then("the configuration publishes these settings:")
@harness_step
async def publishes_settings(context):
    document = context.world.notes["config"]
    for row in context.table:
        value = published_setting(document, row["setting"])
        if value in (None, "", [], {}):
            raise AssertionError(f"the config document publishes an empty {row['setting']}: {value!r}")


@then("it offers these ways to present a token:")
@harness_step
async def offers_carriers(context):
    methods = published_setting(context.world.notes["config"], "authentication methods")
    missing = [row["carrier"] for row in context.table if CARRIER_METHODS[row["carrier"]] not in methods]
    if missing:
        raise AssertionError(f"the config document does not offer {', '.join(missing)}; it offers {methods}")


@then("it says whether it runs in development or production mode")
@harness_step
async def publishes_mode(context):
    mode = published_setting(context.world.notes["config"], "mode")
    if mode not in ("development", "production"):
        raise AssertionError(f"the config document gives the mode {mode!r}; expected development or production")


@then("the heartbeat is sent at least every {seconds:d} seconds")
@harness_step
async def heartbeat_within(context, seconds):
    interval = published_setting(context.world.notes["config"], "heartbeat interval")
    if not 0 < interval <= seconds:
        raise AssertionError(f"the service sends a heartbeat every {interval} s; the business wants at most {seconds} s")


@when("a client reads the service's published security settings")
@harness_step
async def reads_security(context):
    context.world.notes["security"] = await context.world.cast.instance.api.document(
        "/ws/secure/config", "the security document")


@then("they name the authentication methods, the allowed origins and the signing algorithms")
@harness_step
async def security_names(context):
    document = context.world.notes["security"]
    for field in ("auth_methods", "allowed_origins", "algorithms"):
        if not document.get(field):
            raise AssertionError(f"the security document has no {field}: {document}")


@then("they contain no secret")
@harness_step
async def no_secret(context):
    check_no_secret(context.world.notes["security"], context.harness.settings.jwt_secret)


@when("an operator reads the service's security health")
@harness_step
async def reads_health(context):
    context.world.notes["health"] = await context.world.cast.instance.security_health()


@then("the database, Redis and token verification are reported healthy")
@harness_step
async def reported_healthy(context):
    health = context.world.notes["health"]
    unhealthy = {part: health.get(part) for part in ("database", "redis", "token_verification")
                 if health.get(part) != "ok"}
    if unhealthy:
        raise AssertionError(f"the security health reports {unhealthy}: {health}")
