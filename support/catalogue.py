"""The project's requirement catalogue (features/catalogue.toml), and scenario tags."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "features" / "catalogue.toml"
REQUIREMENT_TAG = re.compile(r"^req[.:](?P<id>[A-Z]+-\d+)$")


@dataclass(frozen=True)
class Area:
    code: str
    title: str
    segment: str
    goal: str
    impact: str


@dataclass(frozen=True)
class Requirement:
    id: str
    statement: str
    area: Area
    source: str

    @property
    def segment(self) -> str:
        return self.area.segment

    @property
    def goal(self) -> str:
        return self.area.goal

    @property
    def impact(self) -> str:
        return self.area.impact


class CatalogueError(ValueError):
    """The catalogue file is malformed, or a tag names an unknown requirement."""


class RequirementCatalogue:
    """Every requirement by id, with its area's business value."""

    def __init__(self, requirements: dict[str, Requirement]):
        self._requirements = requirements

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> "RequirementCatalogue":
        try:
            document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise CatalogueError(f"cannot read the requirement catalogue {path}: {error}") from None
        areas = {
            code: Area(code, a["title"], a["segment"], a["goal"], a["impact"])
            for code, a in document.get("area", {}).items()
        }
        requirements: dict[str, Requirement] = {}
        for entry in document.get("requirement", []):
            rid = entry.get("id", "?")
            if entry.get("area") not in areas:
                raise CatalogueError(f"{path}: requirement {rid} names unknown area {entry.get('area')!r}")
            if rid in requirements:
                raise CatalogueError(f"{path}: requirement {rid} appears twice")
            requirements[rid] = Requirement(rid, entry["statement"], areas[entry["area"]],
                                            entry.get("source", ""))
        return cls(requirements)

    def __contains__(self, rid: str) -> bool:
        return rid in self._requirements

    def __getitem__(self, rid: str) -> Requirement:
        try:
            return self._requirements[rid]
        except KeyError:
            raise CatalogueError(f"@req.{rid} names no requirement in the catalogue") from None

    def __iter__(self):
        return iter(self._requirements.values())

    def __len__(self) -> int:
        return len(self._requirements)


def requirement_ids(tags) -> list[str]:
    """The requirement ids named by tags such as ``req.AUTH-01`` (behave drops the ``@``)."""
    ids = []
    for tag in tags:
        match = REQUIREMENT_TAG.match(str(tag))
        if match:
            ids.append(match["id"])
    return ids
