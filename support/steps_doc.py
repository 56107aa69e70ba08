"""Generate docs/steps.md: every step phrase the features may use, each with an example.

    python -m support.steps_doc            # rewrite docs/steps.md
    python -m support.steps_doc --check    # exit 1 if docs/steps.md is out of date (CI)

The phrases and their explanations come from ``behave --steps-catalog``; the example of
each phrase is its first use in features/ (``behave --dry-run -f steps.usage``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .step_help import describe_blank_types

REPO = Path(__file__).resolve().parent.parent
DOCUMENT = REPO / "docs" / "steps.md"
KEYWORDS = ("Given", "When", "Then", "Step")

_DEFINITION = re.compile(r"^\s*@(?P<keyword>given|when|then|step)\((?P<phrase>.*)\)\s+#\s+(?P<location>\S+)$")
_USE = re.compile(r"^\s+(?P<text>\S.*?)\s+#\s+(?P<location>features/\S+?):\d+$")


@dataclass
class Step:
    keyword: str
    phrase: str
    explanation: list[str] = field(default_factory=list)
    example: str | None = None
    example_file: str | None = None
    location: str | None = None
    variants: list["Step"] = field(default_factory=list)  # other sentences the same step accepts


def _behave(*arguments: str) -> str:
    completed = subprocess.run([sys.executable, "-m", "behave", "--no-summary", *arguments], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
    if completed.returncode != 0:
        raise SystemExit(f"behave {' '.join(arguments)} failed:\n{completed.stdout}{completed.stderr}")
    return completed.stdout


def read_catalog(text: str) -> list[Step]:
    """Parse ``behave --steps-catalog``: an unindented ``Keyword phrase``, then indented explanation."""
    steps: list[Step] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("USING RUNNER"):
            continue
        if not line[0].isspace():
            keyword, _, phrase = line.partition(" ")
            if keyword.capitalize() in KEYWORDS:
                steps.append(Step(keyword.capitalize(), phrase.strip()))
                continue
        if steps:
            steps[-1].explanation.append(line.strip())
    return steps


def read_usage(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """Parse ``-f steps.usage``: (keyword, phrase) -> (first use, its feature file)."""
    examples: dict[tuple[str, str], tuple[str, str]] = {}
    current = None
    for line in text.splitlines():
        definition = _DEFINITION.match(line)
        if definition:
            # behave quotes the phrase without escaping it: '{name:Name}'s phone ...'
            current = (definition["keyword"].capitalize(), definition["phrase"][1:-1])
            continue
        use = _USE.match(line)
        if use and current is not None and current not in examples:
            keyword, _, rest = use["text"].partition(" ")
            if keyword in ("And", "But", "*"):  # shown with the keyword it continues
                keyword = current[0]
            examples[current] = (f"{keyword} {rest}", use["location"])
        elif not line.strip():
            current = None
    return examples


def read_locations(text: str) -> dict[tuple[str, str], str]:
    """Parse ``-f steps.usage``: (keyword, phrase) -> the step function's location, used or not."""
    return {(m["keyword"].capitalize(), m["phrase"][1:-1]): m["location"]
            for m in map(_DEFINITION.match, text.splitlines()) if m}


def canonical(steps: list[Step], root: Path = REPO) -> list[Step]:
    """One entry per step function: its first sentence in the source, the others as its variants."""
    by_function: dict[str, list[Step]] = {}
    for step in steps:
        by_function.setdefault(step.location or f"{step.keyword} {step.phrase}", []).append(step)
    entries = []
    for location, group in by_function.items():
        path = root / location.rsplit(":", 1)[0]
        source = path.read_text(encoding="utf-8") if group[0].location and path.is_file() else ""
        group.sort(key=lambda s: source.find(s.phrase) if s.phrase in source else len(source))
        first, *others = group
        first.variants = others
        first.explanation = first.explanation or next((s.explanation for s in others if s.explanation), [])
        if first.example is None:
            first.example, first.example_file = next(((s.example, s.example_file) for s in others if s.example),
                                                     (None, None))
        entries.append(first)
    return entries


def collect() -> list[Step]:
    steps = read_catalog(_behave("--steps-catalog"))
    usage = _behave("--dry-run", "-f", "steps.usage")
    examples, locations = read_usage(usage), read_locations(usage)
    for step in steps:
        step.example, step.example_file = examples.get((step.keyword, step.phrase), (None, None))
        step.location = locations.get((step.keyword, step.phrase))
    return canonical(steps)


def render(steps: list[Step]) -> str:
    lines = [
        "# Step phrases",
        "",
        "Every sentence a scenario may use, with an example from `features/`. A word in braces is a",
        "blank the scenario fills in: `{name:Name}` is a person (Alice), `{devices:Devices}` one or",
        "more devices (her laptop and phone); the table below says which words each kind of blank",
        "accepts. In a scenario, `And` and `But` repeat the keyword of the step above them.",
        "",
        "A sentence that matches no step is answered, in the run and in `behave --dry-run`, with the",
        "word a blank did not accept and what it accepts, or with the closest known sentences.",
        "",
        "## The words each blank accepts",
        "",
        "| Blank | Accepts | For example |",
        "|---|---|---|",
        *[f"| `{{...:{name}}}` | {accepts} | {examples} |" for name, accepts, examples in describe_blank_types()],
        "",
        "Generated by `python -m support.steps_doc` from `behave --steps-catalog`: do not edit by hand.",
        "CI fails when this file is out of date (`tests/test_steps_doc.py`), when a step is undefined,",
        "and when a scenario names no known requirement.",
        "",
    ]
    for keyword in KEYWORDS:
        group = [step for step in steps if step.keyword == keyword]
        if not group:
            continue
        lines += [f"## {keyword}", ""]
        for step in group:
            lines.append(f"### {keyword} {step.phrase}")
            lines.append("")
            if step.explanation:
                lines += [" ".join(step.explanation), ""]
            if step.variants:
                lines += ["Also accepted:", ""] + [f"- `{v.keyword} {v.phrase}`" for v in step.variants] + [""]
            if step.example:
                lines += [f"Example ({step.example_file}):", "", "```gherkin", step.example, "```", ""]
            else:
                lines += ["Not used by any scenario yet.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support.steps_doc", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that docs/steps.md is up to date")
    arguments = parser.parse_args(argv)
    text = render(collect())
    if arguments.check:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
        if current != text:
            print("docs/steps.md is out of date: run `python -m support.steps_doc`", file=sys.stderr)
            return 1
        print("docs/steps.md is up to date")
        return 0
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT.relative_to(REPO)}: {len(text.splitlines())} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
