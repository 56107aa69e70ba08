"""The target's HTTP API: sign-up, sign-in, config document and health."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class SessionTokens:
    """What sign-up and sign-in return: identities and tokens bound to one session."""

    user_id: str
    session_id: str
    access_token: str
    refresh_token: str
    expires_in: int


class ApiError(AssertionError):
    """The target answered an HTTP call with an unexpected status."""

    def __init__(self, what: str, status: int, body: str):
        super().__init__(f"{what} answered HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class AccountApi:
    """HTTP calls of the contract (docs/contract.md, section 2)."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def register(self, email: str, password: str, *, display_name: str, plan: str,
                       device_type: str, role: str | None = None) -> SessionTokens:
        body = {"email": email, "password": password, "display_name": display_name,
                "plan": plan, "device_type": device_type}
        if role is not None:
            body["role"] = role
        return await self._tokens("sign-up of " + display_name, "/auth/register", body, 201)

    async def post(self, path: str, body: dict | None = None, token: str | None = None) -> httpx.Response:
        """A raw POST, for answers a step inspects itself (refusals included)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self._client.post(path, json=body, headers=headers)

    async def refresh(self, refresh_token: str) -> SessionTokens:
        return await self._tokens("the refresh", "/auth/refresh", {"refresh_token": refresh_token}, 200)

    async def logout(self, access_token: str) -> None:
        response = await self.post("/auth/logout", None, access_token)
        if response.status_code not in (200, 204):
            raise ApiError("the sign-out (/auth/logout)", response.status_code, response.text)

    async def change_plan(self, access_token: str, plan: str) -> None:
        response = await self.post("/account/plan", {"plan": plan}, access_token)
        if response.status_code != 200:
            raise ApiError("the plan change (/account/plan)", response.status_code, response.text)

    async def login(self, email: str, password: str, device_type: str,
                    who: str = "sign-in") -> SessionTokens:
        body = {"email": email, "password": password, "device_type": device_type}
        return await self._tokens(who, "/auth/login", body, 200)

    async def _tokens(self, what: str, path: str, body: dict, expected: int) -> SessionTokens:
        response = await self._client.post(path, json=body)
        if response.status_code != expected:
            raise ApiError(f"{what} ({path})", response.status_code, response.text)
        data = response.json()
        return SessionTokens(data["user_id"], data["session_id"], data["access_token"],
                             data["refresh_token"], int(data.get("expires_in", 0)))

    async def config_document(self) -> dict:
        return await self.document("/ws/config", "the config document")

    async def document(self, path: str, what: str, missing_ok: bool = False, any_status: bool = False) -> dict:
        """A JSON document the target publishes at ``path`` (``{}`` if absent and ``missing_ok``).

        ``any_status``: also when the answer is an error status (a health document says 503).
        """
        response = await self._client.get(path)
        if response.status_code == 404 and missing_ok:
            return {}
        if any_status and response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        if response.status_code != 200:
            raise ApiError(f"{what} ({path})", response.status_code, response.text)
        return response.json()
