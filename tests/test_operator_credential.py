"""Entitlements and the health details are the operator's in production (issue 12, items 7-8;
docs/contract.md, section 14), and an HTTP body's text cannot crash the backend.

A production and a development instance of the reference backend, with an operator
credential, on embedded PostgreSQL and Redis. The checks are also run against the backend
with the credential ignored, and without the body check (tests/planted/http_defects.py),
where they must fail.
"""

from __future__ import annotations

import secrets

import httpx
import pytest

from conftest import start_planted_backends
from support.launcher import EmbeddedServices

OPERATOR = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def deployment():
    services = EmbeddedServices()
    try:
        database, redis = services.start_postgres(), services.start_redis()
        shared = {"DATABASE_URL": database, "REDIS_URL": redis, "JWT_SECRET": secrets.token_urlsafe(32),
                  "OPERATOR_TOKEN": OPERATOR, "ALLOWED_ORIGINS": "https://app.example.com"}
        started = services.start_backends({mode: {**shared, "BACKEND_MODE": mode}
                                           for mode in ("production", "development")})
        planted, unchecked = start_planted_backends(services, {
            "ignored": ("operator-credential-ignored", {**shared, "BACKEND_MODE": "production"}),
            "unchecked": ("body-text-unchecked", {**shared, "BACKEND_MODE": "development"})},
            module="tests.planted.http_defects")
        yield {**{backend.name: backend.url for backend in started}, "planted": planted.url,
               "unchecked": unchecked.url}
    finally:
        services.stop()


def operator() -> dict:
    return {"Authorization": f"Bearer {OPERATOR}"}


def sign_up(url: str, headers: dict | None = None, **fields) -> httpx.Response:
    body = {"email": f"op.{secrets.token_hex(4)}@example.test", "password": "a long passphrase", **fields}
    return httpx.post(url + "/auth/register", json=body, headers=headers or {}, timeout=10)


def production_findings(url: str) -> list[str]:
    """What a production instance lets a stranger or a customer do that only an operator may."""
    found = []
    for fields in ({"plan": "enterprise"}, {"role": "admin"}):
        answer = sign_up(url, **fields)
        if answer.status_code != 403 or answer.json().get("error") != "operator_required":
            found.append(f"sign-up with {fields} answered {answer.status_code}: {answer.text[:120]}")
    customer = sign_up(url).json()
    own = {"Authorization": f"Bearer {customer['access_token']}"}
    answer = httpx.post(url + "/account/plan", json={"plan": "enterprise"}, headers=own, timeout=10)
    if answer.status_code != 403:
        found.append(f"a customer's own plan change answered {answer.status_code}")
    for headers, who in (({}, "no credential"), (own, "a customer's access token")):
        answer = httpx.post(url + "/operator/entitlements", json={"user_id": customer["user_id"], "plan": "pro"},
                            headers=headers, timeout=10)
        if answer.status_code != 401:
            found.append(f"the operator API with {who} answered {answer.status_code}")
        health = httpx.get(url + "/ws/secure/health", headers=headers, timeout=10)
        if health.status_code != 401 or "connections" in health.text:
            found.append(f"the health details with {who} answered {health.status_code}: {health.text[:120]}")
    liveness = httpx.get(url + "/health", timeout=10)
    if liveness.status_code != 200 or liveness.json() != {"status": "ok"}:
        found.append(f"/health told a stranger {liveness.text[:120]}")
    return found


def test_in_production_only_the_operator_changes_entitlements_and_reads_the_health_details(deployment):
    assert production_findings(deployment["production"]) == []


def test_the_production_checks_fail_when_the_credential_is_ignored(deployment):
    found = production_findings(deployment["planted"])
    assert any("sign-up with {'plan': 'enterprise'} answered 201" in item for item in found), found
    assert any("the operator API with no credential answered 200" in item for item in found), found
    assert any("the health details with no credential answered 200" in item for item in found), found


def test_the_operator_sets_plan_and_role_in_production(deployment):
    url = deployment["production"]
    customer = sign_up(url).json()
    answer = httpx.post(url + "/operator/entitlements", json={"user_id": customer["user_id"], "plan": "enterprise",
                                                             "role": "admin"}, headers=operator(), timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"user_id": customer["user_id"], "plan": "enterprise", "role": "admin"}
    created = sign_up(url, operator(), plan="pro", role="admin")
    assert created.status_code == 201, created.text
    unknown = httpx.post(url + "/operator/entitlements", json={"user_id": customer["session_id"], "plan": "pro"},
                         headers=operator(), timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    wrong = sign_up(url, {"Authorization": "Bearer " + secrets.token_urlsafe(32)}, plan="pro")
    assert wrong.status_code == 401, wrong.text
    details = httpx.get(url + "/ws/secure/health", headers=operator(), timeout=10)
    assert details.status_code == 200 and "connections" in details.json() and "identity_store" in details.json()


def test_development_keeps_the_self_service_shortcuts(deployment):
    url = deployment["development"]
    created = sign_up(url, plan="enterprise", role="admin")
    assert created.status_code == 201, created.text
    own = {"Authorization": f"Bearer {created.json()['access_token']}"}
    assert httpx.post(url + "/account/plan", json={"plan": "pro"}, headers=own, timeout=10).json() == {"plan": "pro"}
    assert "connections" in httpx.get(url + "/ws/secure/health", timeout=10).json()
    assert set(httpx.get(url + "/health", timeout=10).json()) == {"status", "database", "redis", "version"}


@pytest.mark.parametrize("body", [
    b'{"email": "nul@example.test", "password": "pw", "display_name": "A\\u0000B"}',
    b'{"email": "lone@example.test", "password": "\\ud800"}',
    b"[" * 5000 + b"]" * 5000,
], ids=["NUL in a field", "lone surrogate in a field", "deeply nested"])
def test_a_body_that_cannot_be_stored_is_refused_not_a_server_error(deployment, body):
    answer = httpx.post(deployment["development"] + "/auth/register", content=body,
                        headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_request"
    if b"[[[" not in body:
        # Without the check (the backend before it), the same body is a 500.
        unchecked = httpx.post(deployment["unchecked"] + "/auth/register", content=body,
                               headers={"Content-Type": "application/json"}, timeout=10)
        assert unchecked.status_code == 500, unchecked.text
