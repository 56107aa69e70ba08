"""Plans and roles (contract sections 7 and 12): data read from a TOML file, checked at start.

A socket lives by the plan and role its user had when it opened; a tool is allowed when
the plan lists it and the role does not deny it.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_FILE = Path(__file__).with_name("plans.toml")
DEFAULT_PLAN = "free"
DEFAULT_ROLE = "member"
UNLIMITED = "unlimited"
NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
PLAN_KEYS = ("max_connections_per_user", "messages_per_minute", "agent_runs_per_day", "tools")
ROLE_KEYS = ("tools_denied",)


class PlansError(Exception):
    """The plans file is missing or malformed; the message says where and what was expected."""


@dataclass(frozen=True)
class Plan:
    name: str
    max_connections_per_user: int
    messages_per_minute: int
    agent_runs_per_day: int | None  # None: unlimited
    tools: tuple[str, ...]

    def document(self) -> dict[str, Any]:
        return {"max_connections_per_user": self.max_connections_per_user,
                "messages_per_minute": self.messages_per_minute,
                "agent_runs_per_day": self.agent_runs_per_day, "tools": list(self.tools)}


@dataclass(frozen=True)
class Role:
    name: str
    tools_denied: tuple[str, ...]

    def document(self) -> dict[str, Any]:
        return {"tools_denied": list(self.tools_denied)}


def refusal(plan: Plan, role: Role, tool: str) -> str | None:
    """Why `tool` may not run: "plan", "role", or None when it may. The plan is asked first."""
    if tool not in plan.tools:
        return "plan"
    if tool in role.tools_denied:
        return "role"
    return None


@dataclass(frozen=True)
class Catalogue:
    """Every plan and role, in the file's order."""

    plans: Mapping[str, Plan]
    roles: Mapping[str, Role]

    @property
    def default_plan(self) -> Plan:
        return self.plans[DEFAULT_PLAN]

    def plan(self, name: str) -> Plan:
        """The named plan; a name the file no longer holds (a user left on a removed plan) gets the default."""
        if name not in self.plans:
            log.warning("a user is on the plan %r, which the plans file does not define; applying %r",
                        name, DEFAULT_PLAN)
            return self.default_plan
        return self.plans[name]

    def role(self, name: str) -> Role:
        if name not in self.roles:
            log.warning("a user has the role %r, which the plans file does not define; applying %r",
                        name, DEFAULT_ROLE)
            return self.roles[DEFAULT_ROLE]
        return self.roles[name]


def load(path: Path, tools: Collection[str]) -> Catalogue:
    """Read and check the plans file; raise PlansError on the first problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlansError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlansError(f"{path} is not valid TOML: {exc}") from None
    _keys(data, "the file", ("plans", "roles"))
    plans = {name: _plan(name, table, tools) for name, table in _tables(data, "plans").items()}
    roles = {name: _role(name, table, tools) for name, table in _tables(data, "roles").items()}
    if DEFAULT_PLAN not in plans:
        raise PlansError(f"there is no [plans.{DEFAULT_PLAN}]; it is the default plan and the published limits")
    if DEFAULT_ROLE not in roles:
        raise PlansError(f"there is no [roles.{DEFAULT_ROLE}]; it is the default role")
    return Catalogue(plans, roles)


def _tables(data: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    tables = data.get(section)
    if not isinstance(tables, dict) or not tables:
        raise PlansError(f"there is no [{section}.<name>] table; expected at least one")
    for name, table in tables.items():
        if not NAME.fullmatch(name):
            raise PlansError(f"[{section}.{name}] has a bad name; expected lower-case letters, digits, _ or -")
        if not isinstance(table, dict):
            raise PlansError(f"{section}.{name} is not a table; expected [{section}.{name}]")
    return tables


def _plan(name: str, table: dict[str, Any], tools: Collection[str]) -> Plan:
    where = f"[plans.{name}]"
    _keys(table, where, PLAN_KEYS, required=True)
    runs = table["agent_runs_per_day"]
    return Plan(
        name=name,
        max_connections_per_user=_positive(table, where, "max_connections_per_user"),
        messages_per_minute=_positive(table, where, "messages_per_minute"),
        agent_runs_per_day=None if runs == UNLIMITED else _positive(table, where, "agent_runs_per_day", UNLIMITED),
        tools=_tools(table, where, "tools", tools),
    )


def _role(name: str, table: dict[str, Any], tools: Collection[str]) -> Role:
    where = f"[roles.{name}]"
    _keys(table, where, ROLE_KEYS, required=True)
    return Role(name=name, tools_denied=_tools(table, where, "tools_denied", tools))


def _keys(table: dict[str, Any], where: str, known: tuple[str, ...], required: bool = False) -> None:
    unknown = [key for key in table if key not in known]
    if unknown:
        raise PlansError(f"{where} has the unknown key {unknown[0]!r}; expected {', '.join(known)}")
    missing = [key for key in known if key not in table] if required else []
    if missing:
        raise PlansError(f"{where} has no {missing[0]}; expected {', '.join(known)}")


def _positive(table: dict[str, Any], where: str, key: str, alternative: str | None = None) -> int:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        expected = "a positive whole number" + (f" or {alternative!r}" if alternative else "")
        raise PlansError(f"{where} {key} is {value!r}; expected {expected}")
    return value


def _tools(table: dict[str, Any], where: str, key: str, tools: Collection[str]) -> tuple[str, ...]:
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(tool, str) for tool in value):
        raise PlansError(f"{where} {key} is {value!r}; expected a list of tool names")
    unknown = [tool for tool in value if tool not in tools]
    if unknown:
        raise PlansError(f"{where} {key} names the unknown tool {unknown[0]!r}; expected some of {', '.join(tools)}")
    if len(set(value)) != len(value):
        raise PlansError(f"{where} {key} names a tool twice: {value!r}")
    return tuple(value)
