"""The embedded PostgreSQL: initdb once per PostgreSQL build, a throwaway's durability settings.

Each test points the user's cache (XDG_CACHE_HOME) at a directory of its own.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time

import asyncpg

from support import launcher
from support.launcher import EmbeddedServices


def started_postgres_facts() -> tuple[int, str]:
    """Start an embedded PostgreSQL, read its system identifier and fsync setting, stop it."""
    services = EmbeddedServices()
    try:
        url = services.start_postgres()

        async def read() -> tuple[int, str]:
            connection = await asyncpg.connect(url)
            try:
                return (await connection.fetchval("SELECT system_identifier FROM pg_control_system()"),
                        await connection.fetchval("SHOW fsync"))
            finally:
                await connection.close()

        return asyncio.run(read())
    finally:
        services.stop()


def test_the_data_directory_is_made_once_and_copied_after(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first, fsync = started_postgres_facts()
    templates = [p for p in (tmp_path / "executable-spec" / "postgres-data").iterdir() if p.is_dir()]
    assert len(templates) == 1 and (templates[0] / "PG_VERSION").is_file(), templates
    second, _ = started_postgres_facts()
    # initdb draws a new system identifier every time: the same one twice means a copy.
    assert second == first, "the second PostgreSQL ran initdb again instead of copying the cached data directory"
    assert fsync == "off", "the throwaway PostgreSQL still waits for the disk at every commit"


def test_without_a_usable_cache_initdb_runs_as_before(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    first, _ = started_postgres_facts()
    second, _ = started_postgres_facts()
    assert first != second  # two initdbs, each its own identifier


def test_its_data_lives_in_memory_while_it_runs_and_is_gone_after(monkeypatch, tmp_path):
    """On a machine with a RAM-backed MEMORY_DIRECTORY; what a killed run left there is removed by the next."""
    monkeypatch.setattr(launcher, "MEMORY_DIRECTORY", tmp_path)  # stands in for /dev/shm
    monkeypatch.setattr(launcher, "MEMORY_ROOM_BYTES", 0)
    abandoned, alive, claimed = (tmp_path / f"{launcher.MEMORY_PREFIX}{name}" for name in ("killed", "alive", "new"))
    for directory in (abandoned, alive, claimed):
        (directory / "pgdata").mkdir(parents=True)
    (abandoned / launcher.MEMORY_LOCK).touch()  # its run held the lock; nobody holds it now
    long_ago = time.time() - 2 * launcher.MEMORY_CLAIM_SECONDS
    os.utime(abandoned, (long_ago, long_ago))
    os.utime(alive, (long_ago, long_ago))
    held = open(alive / launcher.MEMORY_LOCK, "w")  # another run, alive
    fcntl.flock(held, fcntl.LOCK_EX)
    services = EmbeddedServices()
    try:
        services.start_postgres()
        assert not abandoned.exists(), "the data a killed run left in memory was not removed"
        assert alive.exists() and claimed.exists(), "the data of a run still alive (or just starting) was removed"
        ours = set(tmp_path.iterdir()) - {alive, claimed}
        assert len(ours) == 1 and (ours.pop() / "pgdata" / "PG_VERSION").is_file(), list(tmp_path.iterdir())
    finally:
        services.stop()
        held.close()
    assert set(tmp_path.iterdir()) == {alive, claimed}, "the run's data stayed in memory after it stopped"


def test_without_room_in_memory_its_data_stays_in_the_scratch_directory(monkeypatch):
    monkeypatch.setattr(launcher, "MEMORY_ROOM_BYTES", 1 << 62)
    services = EmbeddedServices()
    try:
        services.start_postgres()
        assert (services.workdir / "pgdata" / "PG_VERSION").is_file()
    finally:
        services.stop()
