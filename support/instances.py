"""The instances of the target: where each serves, in which mode, with which published settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from .accounts import AccountApi
from .raw_socket import idle_connection
from .settings import websocket_base

# How a feature describes a client that never finishes its handshake -> the bytes it sends.
UNFINISHED_HANDSHAKES = {
    "sends nothing": b"",
    "sends half an upgrade request": b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n",
}

# How a feature names an address -> the config document's endpoint name.
ADDRESSES = {
    "the main socket address": "websocket",
    "her personal socket address": "user",
    "his personal socket address": "user",
    "her versioned personal socket address": "versioned",
    "his versioned personal socket address": "versioned",
    "the tools address": "mcp",
}
_DEFAULT_PATHS = {"websocket": "/ws", "user": "/ws/{user_id}", "versioned": "/ws/v1/{user_id}", "mcp": "/ws/mcp"}


@dataclass
class Instance:
    """One instance of the target, known by what it publishes about itself."""

    label: str
    url: str
    api: AccountApi
    config: dict
    security: dict

    @classmethod
    async def discover(cls, label: str, url: str, operator_token: str | None = None) -> "Instance":
        api = AccountApi(url, operator_token=operator_token)
        config = await api.config_document()
        security = await api.document("/ws/secure/config", "the security document", missing_ok=True)
        return cls(label, url, api, config, security)

    @property
    def mode(self) -> str:
        return str(self.config.get("mode", "unknown"))

    @property
    def default_origin(self) -> str | None:
        """The origin a browser of the product's own web app sends."""
        allowed = self.security.get("allowed_origins") or []
        return allowed[0] if allowed else None

    def socket_url(self, endpoint: str = "websocket", user_id: str | None = None) -> str:
        template = self.config.get("endpoints", {}).get(endpoint, _DEFAULT_PATHS[endpoint])
        return websocket_base(self.url) + template.replace("{user_id}", user_id or "")

    def __str__(self) -> str:
        return f"{self.label} ({self.mode}, {self.url})"

    async def security_health(self, any_status: bool = False) -> dict:
        # The details are the operator's in production (docs/contract.md, section 10).
        return await self.api.document("/ws/secure/health", "the security health", any_status=any_status,
                                       as_operator=True)

    async def wait_for_open_count(self, acceptable: Callable[[int], bool], seconds: float, what: str) -> int:
        """Poll the open-socket count until ``acceptable``; fail after ``seconds``."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            count = (await self.security_health())["connections"]["open"]
            if acceptable(count):
                return count
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self} still counts {count} open sockets after {seconds} s; expected {what}")
            await asyncio.sleep(0.05)

    async def idle_connection(self, behaviour: str, timeout: float) -> float | None:
        """Open TCP and never finish the upgrade; seconds until the server dropped it, or None."""
        try:
            payload = UNFINISHED_HANDSHAKES[behaviour]
        except KeyError:
            raise ValueError(f"unknown behaviour {behaviour!r}; the features know {', '.join(UNFINISHED_HANDSHAKES)}") from None
        return await idle_connection(self.url, payload, timeout)
