"""Discovery: what the service publishes about itself."""

from behave import then, when

from support.loop import harness_step
from support.phrases import CARRIER_METHODS, register_phrases
from support.questions import published_setting

register_phrases()


@when("a client reads the service's published configuration")
@harness_step
async def reads_configuration(context):
    context.world.notes["config"] = await context.harness.api.config_document()


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
