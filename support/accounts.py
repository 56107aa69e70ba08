"""The target's HTTP API: sign-up, sign-in, config document and health.

Plans and roles are an operator's to give (docs/contract.md, section 14): when the suite holds
the deployment's operator credential (OPERATOR_TOKEN), sign-up presents it and plan changes go
through ``POST /operator/entitlements``; without it they use the development shortcuts, which
a production instance refuses with 403 ``operator_required``.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass

import httpx

from .redaction import jwt_claims_unverified


@dataclass(frozen=True)
class SessionTokens:
    """What sign-up and sign-in return: identities and tokens bound to one session."""

    user_id: str
    session_id: str
    access_token: str
    refresh_token: str
    expires_in: int


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (its CA bundle, SSL_CERT_FILE honoured), built once per process.

    Each client would otherwise build its own and load the CA bundle again, about 60 ms of CPU
    apiece: a worker's start-up pays it once, not once per instance.
    """
    return httpx.create_ssl_context()


class ApiError(AssertionError):
    """The target answered an HTTP call with an unexpected status."""

    def __init__(self, what: str, status: int, body: str):
        super().__init__(f"{what} answered HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class AccountApi:
    """HTTP calls of the contract (docs/contract.md, section 2)."""

    def __init__(self, base_url: str, timeout: float = 10.0, operator_token: str | None = None):
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, verify=tls_context())
        self._operator = {"Authorization": f"Bearer {operator_token}"} if operator_token else {}

    async def close(self) -> None:
        await self._client.aclose()

    async def register(self, email: str, password: str, *, display_name: str, plan: str,
                       device_type: str, role: str | None = None) -> SessionTokens:
        body = {"email": email, "password": password, "display_name": display_name,
                "plan": plan, "device_type": device_type}
        if role is not None:
            body["role"] = role
        return await self._tokens("sign-up of " + display_name, "/auth/register", body, 201, self._operator)

    async def post(self, path: str, body: dict | None = None, token: str | None = None) -> httpx.Response:
        """A raw POST, for answers a step inspects itself (refusals included)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self._client.post(path, json=body, headers=headers)

    async def get(self, path: str) -> httpx.Response:
        """A raw GET without any credential, for answers a step inspects itself (refusals included)."""
        return await self._client.get(path)

    async def refresh(self, refresh_token: str) -> SessionTokens:
        return await self._tokens("the refresh", "/auth/refresh", {"refresh_token": refresh_token}, 200)

    async def logout(self, access_token: str) -> None:
        response = await self.post("/auth/logout", None, access_token)
        if response.status_code not in (200, 204):
            raise ApiError("the sign-out (/auth/logout)", response.status_code, response.text)

    async def change_plan(self, access_token: str, plan: str) -> None:
        """Move the token's user to ``plan``: as the operator when the suite is one, else by self-service."""
        if self._operator:
            user_id = (jwt_claims_unverified(access_token) or {}).get("sub")
            response = await self._client.post("/operator/entitlements", json={"user_id": user_id, "plan": plan},
                                               headers=self._operator)
            what = "the operator's plan change (/operator/entitlements)"
        else:
            response = await self.post("/account/plan", {"plan": plan}, access_token)
            what = "the plan change (/account/plan)"
        if response.status_code != 200:
            raise ApiError(what, response.status_code, response.text)

    async def login(self, email: str, password: str, device_type: str,
                    who: str = "sign-in") -> SessionTokens:
        body = {"email": email, "password": password, "device_type": device_type}
        return await self._tokens(who, "/auth/login", body, 200)

    async def _tokens(self, what: str, path: str, body: dict, expected: int,
                      headers: dict | None = None) -> SessionTokens:
        response = await self._client.post(path, json=body, headers=headers or {})
        if response.status_code != expected:
            raise ApiError(f"{what} ({path})", response.status_code, response.text)
        data = response.json()
        return SessionTokens(data["user_id"], data["session_id"], data["access_token"],
                             data["refresh_token"], int(data.get("expires_in", 0)))

    async def config_document(self) -> dict:
        return await self.document("/ws/config", "the config document")

    async def document(self, path: str, what: str, missing_ok: bool = False, any_status: bool = False,
                       as_operator: bool = False) -> dict:
        """A JSON document the target publishes at ``path`` (``{}`` if absent and ``missing_ok``).

        ``any_status``: also when the answer is an error status (a health document says 503).
        ``as_operator``: with the operator credential, if the suite holds it.
        """
        response = await self._client.get(path, headers=self._operator if as_operator else {})
        if response.status_code == 404 and missing_ok:
            return {}
        if any_status and response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        if response.status_code != 200:
            raise ApiError(f"{what} ({path})", response.status_code, response.text)
        return response.json()
