"""The contract's machine-readable documents validate with their own ecosystems' tools:
docs/asyncapi.yaml with the official AsyncAPI parser (@asyncapi/parser, pinned in
package.json and installed by ``npm ci`` like Allure), docs/openapi.yaml with
openapi-spec-validator. Each check is also seen refusing a broken copy."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from support.build_report import BuildError, ensure_node_packages

REPO = Path(__file__).resolve().parent.parent
ASYNCAPI = REPO / "docs" / "asyncapi.yaml"
OPENAPI = REPO / "docs" / "openapi.yaml"
PARSE = REPO / "support" / "asyncapi_parse.mjs"
CHANNELS = ["/ws", "/ws/{user_id}", "/ws/v1/{user_id}", "/ws/mcp"]


def parse_asyncapi(path: Path) -> tuple[int, dict]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node was not found: the AsyncAPI document is validated by @asyncapi/parser, on Node.js 20")
    try:
        ensure_node_packages()
    except BuildError as error:
        pytest.fail(str(error))
    completed = subprocess.run([node, str(PARSE), str(path)], cwd=REPO, capture_output=True, text=True, timeout=60)
    try:
        return completed.returncode, json.loads(completed.stdout)
    except ValueError:
        pytest.fail(f"the AsyncAPI parser printed no report (exit {completed.returncode}): "
                    f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}")


def test_the_asyncapi_document_validates_with_the_official_parser():
    status, report = parse_asyncapi(ASYNCAPI)
    assert status == 0 and report["errors"] == [], json.dumps(report["errors"], indent=2)
    assert report["warnings"] == [], json.dumps(report["warnings"], indent=2)
    assert report["asyncapi"] == "3.0.0"
    assert report["channels"] == CHANNELS


def test_the_asyncapi_parser_refuses_a_broken_document(tmp_path):
    document = yaml.safe_load(ASYNCAPI.read_text())
    document["operations"]["ping"]["action"] = "answer"  # neither send nor receive
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(yaml.safe_dump(document))
    status, report = parse_asyncapi(broken)
    assert status != 0
    assert any("operations/ping/action" in error["path"] for error in report["errors"]), report["errors"]


def test_the_parser_is_the_pinned_one():
    pinned = json.loads((REPO / "package.json").read_text())["dependencies"]
    locked = json.loads((REPO / "package-lock.json").read_text())["packages"]
    assert pinned["@asyncapi/parser"] == locked["node_modules/@asyncapi/parser"]["version"]


def test_the_openapi_document_validates_with_openapi_spec_validator():
    document, _ = read_from_filename(str(OPENAPI))
    validate(document)
    assert document["openapi"].startswith("3.1")
    paths = set(document["paths"])
    assert {"/auth/register", "/auth/login", "/auth/refresh", "/auth/logout", "/account/plan",
            "/operator/entitlements", "/ws/config", "/ws/secure/config", "/health", "/ws/secure/health"} <= paths


def test_openapi_spec_validator_refuses_a_broken_document(tmp_path):
    document, _ = read_from_filename(str(OPENAPI))
    document["paths"]["/auth/login"]["post"]["responses"]["200"] = {"content": {}}  # no description
    with pytest.raises(Exception) as refused:
        validate(document)
    assert "description" in str(refused.value)


def test_every_message_type_the_backend_sends_is_documented():
    """The error codes and frame types the reference backend names are all in the AsyncAPI document."""
    document = yaml.safe_load(ASYNCAPI.read_text())
    names = {message["name"] for message in document["components"]["messages"].values()}
    source = "".join((REPO / "backend" / name).read_text() for name in ("chat.py", "messages.py", "agent.py"))
    import re
    codes = set(re.findall(r'(?:ProtocolError|error_frame)\(\s*"([a-z_]+)"', source))
    types = set(re.findall(r'\bframe\(\s*"([a-z_]+)"', source)) | set(re.findall(r'^\s+\("([a-z_]+)", \{"run_id"', source, re.M))
    assert codes and types
    missing = sorted({f"error {code}" for code in codes} - names) + sorted(types - names)
    assert not missing, f"the backend sends frames docs/asyncapi.yaml does not describe: {missing}"
