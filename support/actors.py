"""Actors: the people of the features ("Alice on her laptop") and what they can do."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from .accounts import AccountApi, SessionTokens
from .connection import HandshakeRefused, RecordedConnection
from .leaks import SESSION, USER, LeakDetector, Party
from .redaction import Redactor

# The device words of the features -> the contract's device types.
DEVICE_TYPES = {
    "laptop": "laptop_browser",
    "phone": "mobile_browser",
    "desktop app": "desktop_app",
    "tablet": "tablet_browser",
}
AGENT_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")


def device_type(device: str) -> str:
    try:
        return DEVICE_TYPES[device]
    except KeyError:
        raise ValueError(f"unknown device {device!r}; the features know "
                         f"{', '.join(DEVICE_TYPES)}") from None


@dataclass
class AgentRequest:
    """A question an actor asked from one device, with the marker that makes it traceable."""

    id: str
    device: "Device"
    question: str
    marker: str
    sent_index: int


@dataclass
class Device:
    """One of an actor's devices: a session of its own, and at most one open socket."""

    actor: "Actor"
    name: str
    tokens: SessionTokens
    connection: RecordedConnection | None = None

    @property
    def party(self) -> Party:
        return Party(self.actor.name, self.tokens.user_id, self.tokens.session_id, self.name)

    def __str__(self) -> str:
        return str(self.party)


@dataclass
class Actor:
    """A user of the product, known to the features by first name."""

    name: str
    email: str
    password: str
    world: "Cast"
    plan: str = "free"
    user_id: str | None = None
    devices: dict[str, Device] = field(default_factory=dict)
    requests: list[AgentRequest] = field(default_factory=list)

    @property
    def party(self) -> Party:
        return Party(self.name, self.user_id or "")

    async def sign_up(self, plan: str, device: str = "laptop") -> Device:
        tokens = await self.world.api.register(self.email, self.password, display_name=self.name,
                                               plan=plan, device_type=device_type(device))
        self.plan, self.user_id = plan, tokens.user_id
        self.world.leak_detector.own(self.party, tokens.user_id, "user id")
        self.world.leak_detector.own(self.party, self.email, "e-mail address")
        return self._adopt(device, tokens)

    async def sign_in(self, device: str) -> Device:
        if device in self.devices:
            return self.devices[device]
        tokens = await self.world.api.login(self.email, self.password, device_type(device),
                                            who=f"{self.name} signing in on the {device}")
        return self._adopt(device, tokens)

    def _adopt(self, device: str, tokens: SessionTokens) -> Device:
        self.world.redactor.register(tokens.access_token, "access token")
        self.world.redactor.register(tokens.refresh_token, "refresh token")
        entry = Device(self, device, tokens)
        self.devices[device] = entry
        self.world.leak_detector.own(self.party, tokens.session_id, f"session id ({device})")
        return entry

    def device(self, name: str) -> Device:
        try:
            return self.devices[name]
        except KeyError:
            raise AssertionError(f"{self.name} has not signed in on a {name} in this scenario") from None

    def last_request(self) -> AgentRequest:
        if not self.requests:
            raise AssertionError(f"{self.name} has not asked the agent anything in this scenario")
        return self.requests[-1]

    async def connect(self, device: str, carrier: str = "bearer header",
                      token: str | None = None) -> RecordedConnection:
        """Open a socket from ``device`` with the session's access token (or ``token``)."""
        entry = await self.sign_in(device)
        connection = RecordedConnection(entry.party, self.world.leak_detector)
        self.world.connections.append(connection)
        await connection.open(self.world.websocket_url, carrier=carrier,
                              token=token or entry.tokens.access_token,
                              timeout=self.world.timeout)
        entry.connection = connection
        await connection.wait_for(lambda f: f.type == "connected", "the welcome frame",
                                  self.world.timeout)
        return connection

    async def try_connect(self, device: str, carrier: str | None,
                          token: str | None) -> HandshakeRefused | RecordedConnection:
        """Attempt a handshake that may be refused; return the refusal instead of raising."""
        try:
            return await self.connect(device, carrier, token) if carrier else await self._bare(device)
        except HandshakeRefused as refusal:
            return refusal

    async def _bare(self, device: str) -> RecordedConnection:
        entry = await self.sign_in(device)
        connection = RecordedConnection(entry.party, self.world.leak_detector)
        self.world.connections.append(connection)
        return await connection.open(self.world.websocket_url, carrier=None, token=None,
                                     timeout=self.world.timeout)

    async def ask(self, device: str, question: str) -> AgentRequest:
        """Send ``question`` to the agent from ``device``, tagged with a private marker."""
        entry = self.device(device)
        connection = self._open_connection(entry)
        marker = self.world.leak_detector.private_marker(entry.party, SESSION)
        request = AgentRequest(connection.next_id("chat"), entry, question, marker,
                               len(connection.transcript))
        self.requests.append(request)
        await connection.send({"type": "chat", "id": request.id,
                               "payload": {"text": f"{question} (ref {marker})"}})
        return request

    async def answer_to(self, request: AgentRequest) -> list:
        """Wait for the run to end; return the agent events that carried the request's id."""
        connection = self._open_connection(request.device)
        await connection.wait_for(
            lambda f: f.id == request.id and f.type in ("agent_completed", "error"),
            f"the end of the agent's run for {request.question!r}", self.world.timeout,
            request.sent_index)
        return [f for f in connection.received(request.sent_index) if f.id == request.id]

    def _open_connection(self, entry: Device) -> RecordedConnection:
        if entry.connection is None or not entry.connection.is_open:
            raise AssertionError(f"{entry} has no open connection")
        return entry.connection


class Cast:
    """The actors of one scenario and the shared means they act with."""

    def __init__(self, api: AccountApi, websocket_url: str, leak_detector: LeakDetector,
                 redactor: Redactor, timeout: float, run_tag: str):
        self.api = api
        self.websocket_url = websocket_url
        self.leak_detector = leak_detector
        self.redactor = redactor
        self.timeout = timeout
        self.connections: list[RecordedConnection] = []
        self._actors: dict[str, Actor] = {}
        self._run_tag = run_tag

    def actor(self, name: str) -> Actor:
        """The actor called ``name``, created on first mention with a unique e-mail address."""
        if name not in self._actors:
            unique = secrets.token_hex(4)
            password = secrets.token_urlsafe(16)
            self.redactor.register(password, "password")
            self._actors[name] = Actor(name, f"{name.lower()}.{self._run_tag}.{unique}@example.test",
                                       password, self)
        return self._actors[name]

    @property
    def actors(self) -> list[Actor]:
        return list(self._actors.values())

    async def fence_all(self, backstop: float) -> None:
        """Drain every open socket's delivery path at once (see RecordedConnection.fence)."""
        await asyncio.gather(*(c.fence(self.timeout, backstop) for c in self.connections if c.is_open))

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)
