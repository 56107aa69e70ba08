"""Shared fixtures: the deliberately broken server, and running the specification as a user would."""

from __future__ import annotations

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

import pytest

from support.launcher import BackendProcess, EmbeddedServices

REPO = Path(__file__).resolve().parent.parent


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
    return SpecRun(completed.returncode, completed.stdout + completed.stderr, report, allure_dir)


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
