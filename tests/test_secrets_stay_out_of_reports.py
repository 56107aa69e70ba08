"""No raw token or secret in what a run writes: Allure results, the built report, console output."""

from __future__ import annotations

import base64

from conftest import run_spec
from secret_scan import TOKEN_SHAPED, scan

def test_a_real_run_writes_no_token_and_no_secret(planted_server, tmp_path):
    server = planted_server("none")
    run = run_spec("features/authentication/handshake.feature", "features/isolation/between_users.feature",
                   env=server.target, tmp_path=tmp_path)
    assert run.returncode == 0, run.output
    assert any(run.allure_dir.glob("*-attachment.txt")), "the run attached no transcript"
    assert scan(run.allure_dir, [server.secret]) == []
    assert not TOKEN_SHAPED.search(run.output.encode()) and server.secret not in run.output


def test_a_failing_run_and_its_built_report_hold_no_token_and_no_secret(planted_server, tmp_path):
    from support.build_report import build

    server = planted_server("leak")  # the isolation scenarios fail, with every transcript attached
    run = run_spec("features/authentication/handshake.feature", "features/isolation/between_users.feature",
                   env=server.target, tmp_path=tmp_path)
    assert run.returncode != 0, run.output
    assert any("isolation broken" in p.read_text() for p in run.allure_dir.glob("*-attachment.txt"))
    report = build(run.allure_dir, tmp_path / "report", tmp_path / "history.jsonl")
    assert scan(run.allure_dir, [server.secret]) == []
    assert scan(report.index.parent, [server.secret]) == []


def test_the_scan_finds_a_planted_token(tmp_path):
    (tmp_path / "leaky-attachment.txt").write_bytes(b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz")
    (tmp_path / "other.txt").write_text("the secret is hunter2-hunter2")
    assert len(scan(tmp_path, ["hunter2-hunter2"])) == 2


def test_the_scan_finds_a_token_and_a_secret_embedded_in_a_single_file_report(tmp_path):
    leaked = b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz secret=hunter2-hunter2"
    encoded = b"Sec-WebSocket-Protocol: jwt-auth, ZXlKaGJHY2lPaUpJVXpJMU5pSjkuZXlKemRXSWlPaUpoYkdsalpTSjk"
    (tmp_path / "attachment.txt").write_bytes(encoded)
    embedded = base64.b64encode(leaked).decode()
    (tmp_path / "index.html").write_text(f'<script>d("data/attachments/1.txt","{embedded}")</script>')
    assert len(scan(tmp_path, ["hunter2-hunter2"])) == 3


def test_a_failing_carrier_check_quotes_no_token(planted_server, tmp_path):
    """A server that selects the offered token as its subprotocol: the check fails, naming the token
    only by its claims, in the console, behave's JSON and the Allure status details."""
    server = planted_server("echo-token-subprotocol")
    run = run_spec("features/authentication/handshake.feature", "--tags=req.AUTH-02", env=server.target,
                   tmp_path=tmp_path)
    failed = run.failed_checks()
    assert failed and all(check.check.endswith("selected_marker") for check in failed), run.output
    assert "redacted" in failed[0].message and "expected exactly 'jwt-auth'" in failed[0].message, failed[0].message
    assert scan(run.allure_dir, [server.secret]) == []
    assert not TOKEN_SHAPED.search(run.output.encode())
