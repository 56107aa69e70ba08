"""Lifecycle of a specification run: start, per-scenario set-up and sweep, stop.

No checks live here except the final isolation sweep of every scenario. A worker of a
parallel run (parallel_run.py) runs the same lifecycle on the features its parent hands
out, and leaves the run's summaries to the parent; the parent loads no step and starts no
harness, so those are imported only where they run.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parallel_run import (  # noqa: E402
    run_in_workers_if_planned, start_workers_before_the_steps_load, write_worker_summary,
)

start_workers_before_the_steps_load()


def before_all(context):
    if run_in_workers_if_planned(context):
        return  # this process replays what its workers run; their hooks are the ones below
    from support.harness import Harness
    from support.report import attach_allure_formatter

    userdata = context.config.userdata
    context.harness = Harness.start(userdata)
    attach_allure_formatter(context._runner, context.config, userdata.get("allure_results", "allure-results"),
                            clear="spec_worker" not in userdata)


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
    from support.report import finish_run

    harness = getattr(context, "harness", None)
    try:
        if harness is not None:
            harness.stop()
    finally:
        summary = context.config.userdata.get("spec_worker_summary")
        if summary:
            write_worker_summary(summary, harness)  # the parent summarises the whole run
        else:
            # The requirement coverage summary, and the report's environment (target, versions).
            finish_run(context._runner, harness)
