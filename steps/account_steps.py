"""Accounts: who exists, on which plan."""

from behave import given

from support.loop import harness_step
from support.phrases import register_phrases

register_phrases()


@given("{names:Names} has an account on the {plan} plan")
@given("{names:Names} have accounts on the {plan} plan")
@harness_step
async def accounts_on_plan(context, names, plan):
    """Sign each person up on the named plan (Free, Pro, Enterprise)."""
    cast = context.world.cast
    for name in names:
        await cast.actor(name).sign_up(plan.lower())
    context.world.notes["group"] = names
