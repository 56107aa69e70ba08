"""No raw token or secret in what a run writes: Allure results, the built report, console output."""

from __future__ import annotations

import base64
import binascii
import re

from conftest import run_spec

# A JWT, or one base64url-encoded (the subprotocol carrier); the latter only where it starts a
# word, since "ZXlK" turns up by chance in the middle of any long base64 blob.
TOKEN_SHAPED = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
                          rb"|(?<![A-Za-z0-9+/_-])ZXlK[A-Za-z0-9_-]{24,}")
# The single-file report embeds its data (attachments included) base64-encoded.
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{40,}={0,2}")


def _layers(data: bytes) -> list[bytes]:
    """The bytes themselves, and every long base64 run in them decoded."""
    layers = [data]
    for match in BASE64_RUN.finditer(data):
        run = match.group(0)
        try:
            layers.append(base64.b64decode(run + b"=" * (-len(run) % 4)))
        except (binascii.Error, ValueError):
            continue
    return layers


def scan(directory, secrets: list[str]) -> list[str]:
    found = []
    for path in directory.rglob("*"):
        if path.is_file():
            for data in _layers(path.read_bytes()):
                found += [f"{path.name}: token-shaped {m.group(0)[:20]!r}..." for m in TOKEN_SHAPED.finditer(data)]
                found += [f"{path.name}: contains a configured secret" for s in secrets if s.encode() in data]
    return found


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
