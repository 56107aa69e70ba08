"""Shared fixtures: the deliberately broken server, and running the specification as a user would."""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from support.launcher import BackendProcess, EmbeddedServices

REPO = Path(__file__).resolve().parent.parent


class Scenario(NamedTuple):
    """One scenario of a run, named by what the features say of it rather than by its title."""

    requirements: tuple[str, ...]  # its req.* tags, without "req.": ("AUTH-06", "ISO-06")
    tags: tuple[str, ...]  # all its tags, the feature's too: ("req.CONN-01", "instances.two", ...)
    row: tuple[str, ...] | None  # the cells of its Examples row; None for a plain Scenario
    checks: tuple[str | None, ...]  # the step function of each step (module.function), in order
    status: str
    location: str  # feature:line (an outline's example: the line of its row); stable within a run
    name: str  # behave's title, for messages only: a test never looks a scenario up by it

    def holds(self, *cells: str) -> bool:
        """Whether this is an outline's example whose row holds every one of these cells."""
        return self.row is not None and all(cell in self.row for cell in cells)

    def has_check(self, check: str) -> bool:
        return any(is_check(found, check) for found in self.checks)


class FailedCheck(NamedTuple):
    """A step that failed: in which scenario (by requirement and row), which check, what it said."""

    requirements: tuple[str, ...]
    row: tuple[str, ...] | None
    check: str | None  # the step function, module.function (see step_function)
    message: str
    scenario: Scenario


def is_check(found: str | None, check: str) -> bool:
    """A check is named by its step function, bare ("disconnected_as") or with its module."""
    return found is not None and check in (found, found.rsplit(".", 1)[-1])


@functools.cache
def _step_functions(path: str) -> dict[int, str]:
    """Line -> step function of a steps module, for every line of its decorators and its def.

    behave reports a step definition where inspect finds it: through functools.wraps (see
    support/loop.py, harness_step) to the line of the first decorator of the step function.
    """
    tree = ast.parse((REPO / path).read_text(), path)
    functions = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([decorator.lineno for decorator in node.decorator_list] + [node.lineno])
            for line in range(first, node.lineno + 1):
                functions[line] = f"{Path(path).stem}.{node.name}"
    return functions


def step_function(step: dict) -> str | None:
    """The step function (module.function) that behave matched a step of its JSON report to."""
    location = step.get("match", {}).get("location", "")
    path, _, line = location.rpartition(":")
    if not path.endswith(".py") or not line.isdigit() or not (REPO / path).is_file():
        return None
    return _step_functions(path).get(int(line))


def example_row(location: str) -> tuple[str, ...] | None:
    """The cells of the Examples row a scenario was made from (behave locates an outline's
    example at its row), or None when the scenario is not an example of an outline."""
    path, _, line = location.rpartition(":")
    lines = (REPO / path).read_text(encoding="utf-8").splitlines() if (REPO / path).is_file() else []
    text = lines[int(line) - 1].strip() if line.isdigit() and 0 < int(line) <= len(lines) else ""
    if not text.startswith("|"):
        return None
    cells = re.split(r"(?<!\\)\|", text)[1:-1]
    return tuple(cell.strip().replace("\\|", "|") for cell in cells)


@dataclass
class SpecRun:
    """The outcome of one ``behave`` run: exit code, console output, per-step results."""

    returncode: int
    output: str
    report: list
    allure_dir: Path

    def scenarios(self) -> dict[str, dict]:
        found = {}
        for feature in self.report:
            for element in feature.get("elements", []):
                if element.get("type") == "scenario":
                    found[element["name"]] = element
        return found

    def scenario_list(self) -> list[Scenario]:
        """Every scenario of the report, selected or not (see Scenario.status)."""
        found = []
        for feature in self.report:
            for element in feature.get("elements", []):
                if element.get("type") == "scenario":
                    tags = tuple(feature.get("tags", [])) + tuple(element.get("tags", []))
                    requirements = tuple(tag[len("req."):] for tag in tags if tag.startswith("req."))
                    found.append(Scenario(requirements, tags, example_row(element["location"]),
                                          tuple(step_function(step) for step in element.get("steps", [])),
                                          element.get("status", "?"), element["location"], element["name"]))
        return found

    def ran(self) -> list[Scenario]:
        """The scenarios the run selected and did not skip."""
        return [scenario for scenario in self.scenario_list() if scenario.status != "skipped"]

    def scenario_by_row(self, requirement: str, *cells: str) -> Scenario:
        """The one scenario that ran for the requirement from the Examples row holding these cells."""
        found = [scenario for scenario in self.ran()
                 if requirement in scenario.requirements and scenario.holds(*cells)]
        assert len(found) == 1, (
            f"not exactly one example of {requirement} with a row holding {cells} ran: "
            f"{[(scenario.requirements, scenario.row) for scenario in found or self.ran()]}")
        return found[0]

    def failed_checks(self) -> list[FailedCheck]:
        """Every failed step, as (requirement ids, example row, step function, message, scenario).

        A step that raised something other than an AssertionError has no message in behave's
        JSON report; its message is then what the console printed under it.
        """
        printed = self.printed_failures()
        scenarios = {scenario.location: scenario for scenario in self.scenario_list()}
        failed = []
        for feature in self.report:
            for element in feature.get("elements", []):
                if element.get("type") != "scenario":
                    continue
                scenario = scenarios[element["location"]]
                for step in element.get("steps", []):
                    result = step.get("result", {})
                    if result.get("status") in ("failed", "error"):
                        message = result.get("error_message") or ""
                        if isinstance(message, list):
                            message = "\n".join(message)
                        message = message or printed.get((element["name"].strip(), step["name"]), "")
                        failed.append(FailedCheck(scenario.requirements, scenario.row, step_function(step),
                                                  message, scenario))
        return failed

    def failed_steps(self) -> list[tuple[str, str, str]]:
        """(scenario, step, error message) for every failed step.

        A step that raised something other than an AssertionError has no message in
        behave's JSON report; its message is then what the console printed under it.
        """
        failed = []
        printed = self.printed_failures()
        for name, scenario in self.scenarios().items():
            for step in scenario.get("steps", []):
                result = step.get("result", {})
                if result.get("status") in ("failed", "error"):
                    message = result.get("error_message") or ""
                    if isinstance(message, list):
                        message = "\n".join(message)
                    failed.append((name, step["name"], message or printed.get((name.strip(), step["name"]), "")))
        return failed

    def printed_failures(self) -> dict[tuple[str, str], str]:
        """(scenario, step) -> the lines the plain console format printed under a failed step."""
        printed, scenario, step, lines = {}, None, None, []
        for line in self.output.splitlines():
            if step is not None:
                if line.strip():
                    lines.append(line)
                    continue
                printed[(scenario, step)] = "\n".join(lines)
                step, lines = None, []
            heading = re.match(r"\s+Scenario(?: Outline)?: (.*)$", line)
            failure = re.match(r"\s+\w+ (.*) \.\.\. (?:failed|error) in [0-9.]+s$", line)
            if heading:
                scenario = heading.group(1).strip()
            elif failure and scenario is not None:
                step = failure.group(1)
        if step is not None:
            printed[(scenario, step)] = "\n".join(lines)
        return printed


def run_spec(*args: str, env: dict | None = None, tmp_path: Path, timeout: float = 120) -> SpecRun:
    """Run ``python -m behave`` from the repository root, as a user would."""
    report_path = tmp_path / f"report-{secrets.token_hex(3)}.json"
    allure_dir = tmp_path / f"allure-{secrets.token_hex(3)}"
    command = [sys.executable, "-m", "behave", "-f", "json", "-o", str(report_path), "-f", "plain",
               "-D", f"allure_results={allure_dir}", *args]
    completed = subprocess.run(command, cwd=REPO, env={**os.environ, **(env or {})},
                               capture_output=True, text=True, timeout=timeout)
    report = json.loads(report_path.read_text()) if report_path.exists() and report_path.stat().st_size else []
    run = SpecRun(completed.returncode, completed.stdout + completed.stderr, report, allure_dir)
    check_nothing_leaked(run, report_path, [(env or {}).get("JWT_SECRET"), (env or {}).get("OPERATOR_TOKEN")])
    return run


def check_nothing_leaked(run: SpecRun, report_path: Path, secrets: list[str | None]) -> None:
    """Every run, failing ones above all, writes no raw token or secret: console, behave's JSON
    report and the Allure results (status details included)."""
    from secret_scan import scan, scan_bytes

    secrets = [s for s in secrets if s]
    found = scan_bytes("console output", run.output.encode(), secrets)
    if report_path.exists():
        found += scan_bytes(report_path.name, report_path.read_bytes(), secrets)
    if run.allure_dir.exists():
        found += scan(run.allure_dir, secrets)
    assert not found, f"the run wrote a secret or raw token: {found[:3]}"


@dataclass
class PlantedServer:
    url: str
    secret: str
    process: subprocess.Popen

    @property
    def target(self) -> dict:
        """Environment that points the specification at this server (no database, no Redis)."""
        return {"TARGET_URL": self.url, "JWT_SECRET": self.secret,
                "DATABASE_URL": "", "REDIS_URL": ""}


@pytest.fixture
def planted_server():
    """Start tests/planted/server.py with a chosen defect; stopped when the test ends."""
    started: list[PlantedServer] = []

    def start(defect: str) -> PlantedServer:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        secret = secrets.token_urlsafe(32)
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.planted.server", "--defect", defect, "--fd", str(listener.fileno())],
            cwd=REPO, env={**os.environ, "JWT_SECRET": secret}, pass_fds=(listener.fileno(),),
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        port = listener.getsockname()[1]
        listener.close()
        ready = process.stdout.readline()
        assert ready.startswith("READY"), f"the planted server ({defect}) did not start: {ready!r}"
        server = PlantedServer(f"http://127.0.0.1:{port}", secret, process)
        started.append(server)
        return server

    yield start
    for server in started:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(10)


def start_planted_backends(services: EmbeddedServices, instances: dict[str, tuple[str, dict[str, str]]],
                           timeout: float = 30.0,
                           module: str = "tests.planted.defective_backend") -> list[BackendProcess]:
    """Start the reference backend with a planted defect (``python -m <module> --defect NAME``,
    by default tests/planted/defective_backend.py), once per entry ``name -> (defect,
    environment)``, all at once, as the embedded default starts ``python -m backend``; wait
    until each /health says ok. Stop them with ``services.stop_backend``; a start that fails
    stops those already started.
    """
    started = time.monotonic()
    program = ("-m", module, "--defect")
    backends = [services._launch(name, environment, program=(*program, defect))
                for name, (defect, environment) in instances.items()]
    try:
        for backend in backends:
            services._wait_healthy(backend, started + timeout)
    except BaseException:
        for backend in backends:
            services.stop_backend(backend)
        raise
    return backends
