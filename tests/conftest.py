"""Shared fixtures: the deliberately broken server, and running the specification as a user would."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

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
        """(scenario, step, error message) for every failed step."""
        failed = []
        for name, scenario in self.scenarios().items():
            for step in scenario.get("steps", []):
                result = step.get("result", {})
                if result.get("status") in ("failed", "error"):
                    message = result.get("error_message") or ""
                    if isinstance(message, list):
                        message = "\n".join(message)
                    failed.append((name, step["name"], message))
        return failed


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
