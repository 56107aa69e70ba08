"""Starting an instance of the reference backend from a scenario, to see whether it refuses to.

AUTH-12: a production instance refuses to start with a known default signing secret or one
shorter than 32 bytes, and says why. Only the embedded default can start instances (the
scenario is tagged @starts.instances and skipped against an external target); the instance
gets the run's own database and Redis, and is stopped before the step ends.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

from .launcher import health

# How a feature names a signing secret a deployment might start with -> the secret.
START_SECRETS = {
    "the signing secret docker-compose.yml once shipped": lambda: "change-me-in-production",
    "a signing secret of 31 bytes": lambda: "s" * 31,
    "a random signing secret of 32 bytes": lambda: secrets.token_hex(16),
}


@dataclass
class StartAttempt:
    """What became of one instance started by a scenario."""

    mode: str
    served: bool  # it answered /health
    exit_code: int | None
    lines: list[str]  # what it wrote on its standard error and output

    def reasons(self) -> list[str]:
        return [line for line in self.lines if line.startswith("error:")]

    def warnings(self) -> list[str]:
        return [line for line in self.lines if "WARNING" in line and "JWT_SECRET" in line]


async def start_instance(services, settings, mode: str, secret: str, within: float = 15.0) -> StartAttempt:
    """Start ``python -m backend`` in ``mode`` with ``secret``; wait until it serves or exits; stop it."""
    environment = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, "JWT_SECRET": secret,
                   "BACKEND_MODE": mode, "ALLOWED_ORIGINS": "https://app.example.com"}
    backend = services._launch(f"start-up-{mode}-{secrets.token_hex(2)}", environment)
    served, deadline = False, time.monotonic() + within
    try:
        while time.monotonic() < deadline and backend.process.poll() is None:
            status, _ = await asyncio.to_thread(health, backend.url)
            if status == 200:
                served = True
                break
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(services.stop_backend, backend)
    lines = [line for line in backend.log_tail(200).splitlines() if line.strip()]
    return StartAttempt(mode, served, backend.process.returncode if not served else None, lines)


def check_refused_to_start(attempt: StartAttempt, secret: str) -> None:
    if attempt.served:
        raise AssertionError(f"a {attempt.mode} instance started and served with a weak signing secret; "
                             f"expected it to refuse to start")
    if not attempt.exit_code:
        raise AssertionError(f"the {attempt.mode} instance exited with code {attempt.exit_code}; expected non-zero")
    reasons = attempt.reasons()
    if len(reasons) != 1 or "JWT_SECRET" not in reasons[0]:
        raise AssertionError(f"expected one line saying why it refused (naming JWT_SECRET); it wrote {attempt.lines}")
    if secret in reasons[0]:
        raise AssertionError("the refusal repeats the secret it refused")


def check_started_with_warning(attempt: StartAttempt) -> None:
    if not attempt.served:
        raise AssertionError(f"the {attempt.mode} instance did not start (exit {attempt.exit_code}): {attempt.lines[-5:]}")
    if len(attempt.warnings()) != 1:
        raise AssertionError(f"expected one warning about its signing secret; it wrote {attempt.lines}")


def check_started_quietly(attempt: StartAttempt) -> None:
    if not attempt.served:
        raise AssertionError(f"the {attempt.mode} instance did not start (exit {attempt.exit_code}): {attempt.lines[-5:]}")
    if attempt.warnings() or attempt.reasons():
        raise AssertionError(f"a strong signing secret drew a complaint: {attempt.warnings() + attempt.reasons()}")
