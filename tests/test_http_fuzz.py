"""Schemathesis against the reference backend's HTTP API, from docs/openapi.yaml.

One development and one production instance (with an operator credential) run on embedded
PostgreSQL and Redis. Every operation of the document is called with a bounded number of
generated requests, valid and invalid ones, authenticated where it needs it (a user's access
token, or the operator credential). Every answer must conform to the document (status code,
content type, headers, body schema), no answer may be a 5xx, invalid input must be refused,
and an operation that needs a credential must refuse a request without one. (Schemathesis's
"every schema-valid request is accepted" check is left out: the document does not encode every
rule of the backend, say that a display name is not blank, and says so in its descriptions.)

The run is seen failing against the backend with a planted defect (tests/planted/http_defects.py).
Against another deployment: ``FUZZ_TARGET_URL=https://... OPERATOR_TOKEN=... python -m pytest
tests/test_http_fuzz.py -k deployment`` runs the same requests and checks against each URL it
lists (README, "Pointing it at another deployment"); it signs up throwaway accounts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from conftest import start_planted_backends
from support.launcher import EmbeddedServices

OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
# Generated requests per operation, per kind (valid, invalid) and instance: about 600 an
# instance, 20 s for the module on two cores.
EXAMPLES = 50
OPERATOR = os.environ.get("OPERATOR_TOKEN") or secrets.token_urlsafe(32)
MODES = ("development", "production")


@pytest.fixture(scope="module")
def services():
    services = EmbeddedServices()
    try:
        database, redis = services.start_postgres(), services.start_redis()
        services.environment = {"DATABASE_URL": database, "REDIS_URL": redis, "JWT_SECRET": secrets.token_urlsafe(32),
                                "OPERATOR_TOKEN": OPERATOR, "ALLOWED_ORIGINS": "https://app.example.com"}
        yield services
    finally:
        services.stop()


@pytest.fixture(scope="module")
def backends(services):
    """The reference backend in each mode, on one embedded PostgreSQL and Redis."""
    started = services.start_backends({mode: {**services.environment, "BACKEND_MODE": mode} for mode in MODES})
    return {backend.name: backend.url for backend in started}


class Credentials:
    """What a request to one instance presents: a user's token, or the operator's."""

    def __init__(self, url: str):
        self.url = url
        self.email, self.password = f"fuzz.{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(12)
        document = self._post("/auth/register", {"email": self.email, "password": self.password}, 201)
        self.user_token, self.user_id = document["access_token"], document["user_id"]

    def _post(self, path: str, body: dict, expected: int) -> dict:
        response = httpx.post(self.url + path, json=body, timeout=10)
        assert response.status_code == expected, f"{path} answered {response.status_code}: {response.text}"
        return response.json()

    def fresh_user_token(self) -> str:
        """A token of a new session: sign-out revokes the session it is called with."""
        return self._post("/auth/login", {"email": self.email, "password": self.password,
                                          "device_type": "laptop_browser"}, 200)["access_token"]

    def for_operation(self, path: str) -> dict[str, str]:
        if path in ("/operator/entitlements", "/ws/secure/health"):
            return {"Authorization": f"Bearer {OPERATOR}"}
        if path == "/auth/logout":
            return {"Authorization": f"Bearer {self.fresh_user_token()}"}
        if path == "/account/plan":
            return {"Authorization": f"Bearer {self.user_token}"}
        return {}


def fuzz(url: str, examples: int = EXAMPLES, only: str | None = None) -> tuple[int, list[str]]:
    """Run every operation (or those whose path is ``only``) with generated valid and invalid requests.

    Returns the number of requests made and one report per operation and kind that failed.
    """
    credentials = Credentials(url)
    api = schemathesis.openapi.from_path(OPENAPI, config=SchemathesisConfig.from_dict({"base-url": url}))
    failures, calls = [], []
    for result in api.get_all_operations():
        operation = result.ok()
        if only is not None and operation.path != only:
            continue
        for generation in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=generation))
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            def call(case):
                calls.append(operation.label)
                if generation is GenerationMode.POSITIVE and isinstance(case.body, dict) and "user_id" in case.body:
                    case.body["user_id"] = credentials.user_id  # someone who exists, or every answer is a 404
                case.call_and_validate(headers=credentials.for_operation(operation.path),
                                       excluded_checks=[positive_data_acceptance])

            try:
                call()
            except Unsatisfiable:
                if generation is GenerationMode.POSITIVE:
                    raise
                # An operation with no parameters and no body has no invalid request to make.
            except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - every operation is tried
                failures.append(f"{operation.label} ({generation.value} data):\n{failure}")
    return len(calls), failures


@pytest.mark.parametrize("mode", MODES)
def test_every_answer_conforms_to_the_document_and_none_is_a_server_error(backends, mode):
    calls, failures = fuzz(backends[mode])
    print(f"[fuzz] {calls} generated requests against the {mode} instance")
    assert calls >= 10 * EXAMPLES, f"only {calls} requests were made"
    assert not failures, f"against the {mode} instance:\n\n" + "\n\n".join(failures)


def test_the_fuzz_finds_a_server_error_planted_in_the_sign_up(services):
    planted, = start_planted_backends(services, {"email-type-unchecked": (
        "email-type-unchecked", {**services.environment, "BACKEND_MODE": "development"})},
        module="tests.planted.http_defects")
    try:
        calls, failures = fuzz(planted.url, examples=80, only="/auth/register")
    finally:
        services.stop_backend(planted)
    assert calls > 0 and failures, "the fuzz did not notice that a sign-up without an email is a 500"
    assert "Server error" in failures[0] and "500" in failures[0], failures[0]


def test_the_fuzz_finds_an_operator_endpoint_that_ignores_its_credential(services):
    planted, = start_planted_backends(services, {"operator-credential-ignored": (
        "operator-credential-ignored", {**services.environment, "BACKEND_MODE": "production"})},
        module="tests.planted.http_defects")
    try:
        _, failures = fuzz(planted.url, examples=10, only="/operator/entitlements")
    finally:
        services.stop_backend(planted)
    assert failures and "authentication" in failures[0].lower(), failures


@pytest.mark.skipif(not os.environ.get("FUZZ_TARGET_URL"), reason="FUZZ_TARGET_URL names no deployment to fuzz")
def test_a_deployment_answers_by_the_document():
    """Each instance of FUZZ_TARGET_URL (comma-separated), with OPERATOR_TOKEN if the deployment has one."""
    found = []
    for url in [u.strip().rstrip("/") for u in os.environ["FUZZ_TARGET_URL"].split(",") if u.strip()]:
        calls, failures = fuzz(url)
        print(f"[fuzz] {calls} generated requests against {url}")
        found += [f"{url}: {failure}" for failure in failures]
    assert not found, "\n\n".join(found)
