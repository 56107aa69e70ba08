"""What one scenario remembers between its steps, by name, and which step leaves each fact.

A step that reads a fact no earlier step left says, in one line, which sentence the scenario
is missing ("this needs 'Given 25 people have accounts on the Free plan' earlier in the
scenario"), never a KeyError.
"""

from __future__ import annotations


class MissingStep(AssertionError):
    """A step was used without the earlier step it builds on."""

    def __init__(self, sentence: str, what: str):
        super().__init__(f"this step needs {what} ('{sentence}') earlier in the scenario")


class Remembered:
    """A named fact of a scenario, an actor or a device, left by the step ``sentence`` describes."""

    def __init__(self, sentence: str, what: str):
        self.sentence = sentence
        self.what = what

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_remembered_" + name

    def __get__(self, holder, owner=None):
        if holder is None:
            return self
        try:
            return holder.__dict__[self.slot]
        except KeyError:
            raise MissingStep(self.sentence, self.what) from None

    def __set__(self, holder, value) -> None:
        holder.__dict__[self.slot] = value

    def given(self, holder) -> bool:
        """Whether an earlier step left the fact."""
        return self.slot in holder.__dict__


def remembered(holder, name: str) -> bool:
    """Whether ``holder``'s fact ``name`` was left by an earlier step."""
    return getattr(type(holder), name).given(holder)
