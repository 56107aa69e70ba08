"""The words of the outage and capacity features, as phrase types (added to support/phrases.py's).

What a person was doing when a dependency failed ("signs up", "asks her agent a question"),
turned into the name support/outages.py knows the operation by. No import of phrases.py
here: it imports this module at its end.
"""

from __future__ import annotations

import re
from typing import Callable

import parse

# How a feature says what a person was doing when the outage struck (her and his alike).
OPERATION_PHRASES = {
    "signs up": "signs up",
    "signs in on her phone": "signs in on her phone",
    "signs in on his phone": "signs in on her phone",
    "refreshes her laptop's session": "refreshes her laptop's session",
    "refreshes his laptop's session": "refreshes her laptop's session",
    "writes in her thread": "writes in her thread",
    "writes in his thread": "writes in her thread",
    "asks her agent a question": "asks her agent a question",
    "asks his agent a question": "asks her agent a question",
}


def _typed(pattern: str, accepts: str, examples: str, convert: Callable) -> Callable:
    typed = parse.with_pattern(pattern)(convert)
    typed.accepts, typed.examples = accepts, examples
    return typed


_HERS = [phrase for phrase, name in OPERATION_PHRASES.items() if phrase == name]

PHRASE_TYPES: dict[str, Callable] = {
    "Operation": _typed("|".join(re.escape(p) for p in sorted(OPERATION_PHRASES, key=len, reverse=True)),
                        "what the person was doing: " + ", ".join(_HERS[:-1]) + " or " + _HERS[-1]
                        + " (her or his)",
                        "signs up, asks her agent a question", lambda text: OPERATION_PHRASES[text]),
}
