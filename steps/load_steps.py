"""The load profile: many people asking over a period, every frame checked, answers on time."""

from behave import then, when

from support.actors import PRIVATE_QUESTION
from support.launcher import say
from support.load_profile import LoadRun, ask_over, check_answers_within
from support.loop import harness_step
from support.report import attach_text


@when("each of them asks their agent {count:PrivateQuestions} from their {device:DeviceName} over {period:Period}")
@harness_step
async def each_asks_over(context, count, device, period):
    """The group's questions, spread evenly over the period; the figures go to the console and the report."""
    world = context.world
    run = world.cast.load_run = await ask_over(world.members(), device, count, period, PRIVATE_QUESTION)
    figures = run.figures(world.leak_detector.frames_inspected, len(world.leak_detector.violations))
    text = LoadRun.report(figures)
    say(text)
    attach_text("load profile: figures", text)


@then("{share:Share} answers arrive within {seconds:Period}")
@then("{share:Share} answers arrived within {seconds:Period}")
@harness_step
async def answers_within(context, share, seconds):
    check_answers_within(context.world.cast.load_run, share, seconds)
