"""No raw token or secret in what a run writes: Allure results and console output."""

from __future__ import annotations

import re

from conftest import run_spec

TOKEN_SHAPED = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|ZXlK[A-Za-z0-9_-]{24,}")


def scan(directory, secrets: list[str]) -> list[str]:
    found = []
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: token-shaped {m.group(0)[:20]!r}..." for m in TOKEN_SHAPED.finditer(data)]
            found += [f"{path.name}: contains a configured secret" for s in secrets if s.encode() in data]
    return found


def test_a_real_run_writes_no_token_and_no_secret(planted_server, tmp_path):
    server = planted_server("none")
    run = run_spec("features/authentication", "features/isolation", env=server.target, tmp_path=tmp_path)
    assert run.returncode == 0, run.output
    assert any(run.allure_dir.glob("*-attachment.txt")), "the run attached no transcript"
    assert scan(run.allure_dir, [server.secret]) == []
    assert not TOKEN_SHAPED.search(run.output.encode()) and server.secret not in run.output


def test_the_scan_finds_a_planted_token(tmp_path):
    (tmp_path / "leaky-attachment.txt").write_bytes(b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz")
    (tmp_path / "other.txt").write_text("the secret is hunter2-hunter2")
    assert len(scan(tmp_path, ["hunter2-hunter2"])) == 2
