"""Help for a sentence that matches no step: what is wrong with it, in words a product owner can act on.

Given the step catalogue (each step's keyword and sentence pattern, ``{name:Type}`` blanks and
all) and the phrase types of support/phrases.py, ``SentenceHelp.explain`` answers an unknown
sentence with, in this order of preference:

- a known sentence with one word a blank does not accept ("unknown device 'smartwatch': the
  features know laptop, phone, desktop app and tablet");
- a known sentence under another keyword ("this is a When step: write it after When");
- the closest known sentences, ranked by similarity, each with the words its blanks accept.

It always ends by pointing to docs/steps.md. No behave here: the glue in support/report.py
hands it behave's step registry.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

import parse

from .phrases import PHRASE_TYPES

_BLANK = re.compile(r"\{(?P<name>\w*)(?::(?P<type>\w+))?\}")
STEPS_DOCUMENT = "docs/steps.md"


@dataclass(frozen=True)
class Blank:
    name: str
    type_name: str | None

    @property
    def accepts(self) -> str:
        phrase_type = PHRASE_TYPES.get(self.type_name or "")
        return getattr(phrase_type, "accepts", "any words")

    @property
    def example(self) -> str:
        phrase_type = PHRASE_TYPES.get(self.type_name or "")
        examples = getattr(phrase_type, "examples", "")
        return examples.split(", ")[0] if examples else f"<{self.name or 'words'}>"

    @property
    def pattern(self) -> str:
        phrase_type = PHRASE_TYPES.get(self.type_name or "")
        return getattr(phrase_type, "pattern", r".+?")


@dataclass
class KnownSentence:
    """One step of the catalogue: its keyword, its pattern, and what each blank is."""

    keyword: str  # given, when, then or step
    pattern: str
    blanks: list[Blank] = field(default_factory=list)
    _loose: re.Pattern | None = None
    _strict: parse.Parser | None = None

    @classmethod
    def of(cls, keyword: str, pattern: str) -> "KnownSentence":
        blanks = [Blank(m["name"], m["type"]) for m in _BLANK.finditer(pattern)]
        pieces, last = [], 0
        for number, match in enumerate(_BLANK.finditer(pattern)):
            pieces.append(re.escape(pattern[last:match.start()]))
            pieces.append(f"(?P<b{number}>.+?)")
            last = match.end()
        pieces.append(re.escape(pattern[last:]))
        known = cls(keyword, pattern, blanks)
        known._loose = re.compile("".join(pieces) + r"\Z", re.IGNORECASE)
        known._strict = parse.compile(pattern, extra_types=PHRASE_TYPES)
        return known

    @property
    def readable(self) -> str:
        """The sentence with its blanks shown as {name}."""
        return _BLANK.sub(lambda m: "{" + (m["name"] or m["type"] or "words").lower() + "}", self.pattern)

    @property
    def example(self) -> str:
        """The sentence with each blank filled with an example of what it accepts."""
        blanks = iter(self.blanks)
        return _BLANK.sub(lambda m: next(blanks).example, self.pattern)

    def matches(self, text: str) -> bool:
        return self._strict.parse(text) is not None

    def rejected_words(self, text: str) -> list[tuple[Blank, str]] | None:
        """With every blank loosened, does ``text`` read as this sentence? Then which words do not fit."""
        loose = self._loose.match(text)
        if loose is None:
            return None
        return [(blank, loose[f"b{number}"]) for number, blank in enumerate(self.blanks)
                if not re.fullmatch(blank.pattern, loose[f"b{number}"])]


class SentenceHelp:
    """Answers an unknown sentence from the catalogue of known ones."""

    def __init__(self, steps: Iterable[tuple[str, str]]):
        self.known = [KnownSentence.of(keyword, pattern) for keyword, pattern in steps]

    def explain(self, keyword: str, text: str, limit: int = 3) -> str:
        """Plain-words help for ``keyword text`` (keyword: given, when or then), several lines."""
        keyword = keyword.lower()
        own = [k for k in self.known if k.keyword in (keyword, "step")]
        lines = [f"No step matches: {keyword.capitalize()} {text}"]

        near = [(k, rejected) for k in own if (rejected := k.rejected_words(text))]
        if near:
            known, rejected = min(near, key=lambda pair: len(pair[1]))
            for blank, words in rejected:
                lines.append(f"  {_unknown(blank, words)}")
            lines.append(f"  the sentence it resembles: {keyword.capitalize()} {known.readable}")
            lines.append(f"  for example:               {keyword.capitalize()} {known.example}")
        else:
            elsewhere = [k for k in self.known if k.keyword not in (keyword, "step") and k.matches(text)]
            if elsewhere:
                other = elsewhere[0].keyword.capitalize()
                lines.append(f"  this is a {other} step: write it as \"{other} {text}\" (or after a {other} step, "
                             f"as And)")
            else:
                ranked = self.closest(keyword, text, limit)
                if ranked:
                    lines.append("  did you mean:")
                    for known in ranked:
                        lines.append(f"    {keyword.capitalize()} {known.example}")
                        lines.append(f"        ({known.readable}{_blank_words(known)})")
                else:
                    lines.append("  no known sentence is close to it")
        lines.append(f"  every sentence, and the words each blank accepts: {STEPS_DOCUMENT}")
        return "\n".join(lines)

    def closest(self, keyword: str, text: str, limit: int = 3) -> list[KnownSentence]:
        """The known sentences of this keyword most like ``text``, best first."""
        words = _words(text)

        def similarity(known: KnownSentence) -> float:
            example = _words(known.example)
            order = difflib.SequenceMatcher(None, words, example).ratio()
            characters = difflib.SequenceMatcher(None, text.lower(), known.example.lower()).ratio()
            return 0.6 * order + 0.4 * characters

        candidates = [k for k in self.known if k.keyword in (keyword, "step")]
        scored = sorted(((similarity(k), k) for k in candidates), key=lambda pair: -pair[0])
        return [k for score, k in scored[:limit] if score >= 0.3]

    def matching(self, keyword: str, text: str) -> list[KnownSentence]:
        """Every known sentence of this keyword that matches ``text`` (one, for a well-made catalogue)."""
        return [k for k in self.known if k.keyword in (keyword.lower(), "step") and k.matches(text)]


def _unknown(blank: Blank, words: str) -> str:
    what = (blank.name or blank.type_name or "words").replace("_", " ")
    return f"unknown {what} {words!r}: it accepts {blank.accepts}"


def _blank_words(known: KnownSentence) -> str:
    described = [f"{{{(b.name or b.type_name or 'words').lower()}}}: {b.accepts}" for b in known.blanks
                 if b.type_name]
    return "; " + "; ".join(described) if described else ""


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def describe_blank_types(types: dict[str, Callable] = PHRASE_TYPES) -> list[tuple[str, str, str]]:
    """(type name, what it accepts, examples) for every phrase type: the vocabulary of docs/steps.md."""
    return [(name, getattr(t, "accepts", ""), getattr(t, "examples", "")) for name, t in types.items()]
