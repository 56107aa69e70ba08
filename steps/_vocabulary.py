"""The words step sentences may hold, registered with behave once, before any step module loads.

behave loads the step modules of this folder in name order, so this one comes first. The
phrase types themselves, and what each accepts, are in support/phrases.py; the help for a
sentence that matches no step is in support/step_help.py.
"""

from behave import register_type
from behave.step_registry import StepRegistry

from support.phrases import PHRASE_TYPES
from support.report import install_sentence_help

register_type(**PHRASE_TYPES)
install_sentence_help(StepRegistry)
