"""Which service processes are running: to prove a run leaves none of its own behind."""

from __future__ import annotations

import os
from pathlib import Path

# Command-line fragments of the processes an embedded run starts.
SERVICE_SIGNS = ("postgres", "redis-server", "-m backend", "tests.planted.server", "tests.planted.defective_backend",
                 "tests.planted.lifecycle_defects", "support.parallel:WorkerRunner")


def service_processes() -> dict[int, str]:
    """pid -> command line of every live (non-zombie) service-like process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            state = (entry / "stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if state != "Z" and any(sign in cmdline for sign in SERVICE_SIGNS) and int(entry.name) != os.getpid():
            found[int(entry.name)] = cmdline
    return found
