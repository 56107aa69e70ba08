"""Lifecycle of a specification run: start, per-scenario set-up and sweep, stop.

No checks live here except the final isolation sweep of every scenario.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.harness import Harness  # noqa: E402
from support.report import attach_allure_formatter, finish_run  # noqa: E402


def before_all(context):
    userdata = context.config.userdata
    context.harness = Harness.start(userdata)
    attach_allure_formatter(context._runner, context.config, userdata.get("allure_results", "allure-results"))


def before_scenario(context, scenario):
    context.world = context.harness.new_scenario(scenario)


def before_step(context, step):
    world = getattr(context, "world", None)
    if world is not None:
        world.cast.step_begins(step.step_type)


def after_scenario(context, scenario):
    world = getattr(context, "world", None)
    if world is not None:
        context.harness.finish_scenario(world, scenario_failed=scenario.status.has_failed())


def after_all(context):
    harness = getattr(context, "harness", None)
    try:
        if harness is not None:
            harness.stop()
    finally:
        # The requirement coverage summary, and the report's environment (target, versions).
        finish_run(context._runner, harness)
