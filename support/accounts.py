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

    async def register(self, email: str, password: str, *, display_name: str,
                       plan: str, device_type: str) -> SessionTokens:
        body = {"email": email, "password": password, "display_name": display_name,
                "plan": plan, "device_type": device_type}
        return await self._tokens("sign-up of " + display_name, "/auth/register", body, 201)

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
        response = await self._client.get("/ws/config")
        if response.status_code != 200:
            raise ApiError("the config document (/ws/config)", response.status_code, response.text)
        return response.json()

    async def health(self) -> tuple[int, dict]:
        response = await self._client.get("/health")
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"body": response.text[:200]}
