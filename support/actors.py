"""Actors: the people of the features ("Alice on her laptop") and what they can do."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from .accounts import AccountApi, SessionTokens
from .connection import HandshakeRefused, RecordedConnection
from .instances import Instance
from .raw_socket import SilentClient
from .leaks import SESSION, LeakDetector, Party
from .phrases import DEVICE_TYPES, THREAD_ACTIONS, device_type, json_rpc_request, malformed_message
from .redaction import Redactor
from .tokens import TokenFactory
from .world import Remembered

DEFAULT_ORIGIN = object()  # the instance's own web app origin

AGENT_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")


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
    tabs: list[RecordedConnection] = field(default_factory=list)
    previous_tokens: list[SessionTokens] = field(default_factory=list)

    async def refresh(self, api: AccountApi) -> None:
        """Exchange the refresh token for new tokens of the same session, as the app does."""
        new = await api.refresh(self.tokens.refresh_token)
        self.actor.cast.redactor.register(new.access_token, "access token")
        self.actor.cast.redactor.register(new.refresh_token, "refresh token")
        self.previous_tokens.append(self.tokens)
        self.tokens = new

    @property
    def connection(self) -> RecordedConnection | None:
        """The device's most recently opened socket."""
        return self.tabs[-1] if self.tabs else None

    @property
    def party(self) -> Party:
        return Party(self.actor.name, self.tokens.user_id, self.tokens.session_id, self.name)

    def __str__(self) -> str:
        return str(self.party)

    async def renew(self, token: str, timeout: float) -> None:
        """Renew the open socket's token in place and wait until the service confirms."""
        connection = self.connection
        renew_id = connection.next_id("renew")
        since = await connection.send({"type": "reauthenticate", "id": renew_id, "payload": {"token": token}})
        reply = await connection.wait_for(lambda f: f.id == renew_id, "the answer to its renewal", timeout, since)
        if reply.type != "reauthenticated":
            raise AssertionError(f"{self} renewed its token and was answered {reply.text}")


@dataclass
class Actor:
    """A user of the product, known to the features by first name."""

    name: str
    email: str
    password: str
    cast: "Cast"
    plan: str = "free"
    user_id: str | None = None
    devices: dict[str, Device] = field(default_factory=dict)
    requests: list[AgentRequest] = field(default_factory=list)

    @property
    def party(self) -> Party:
        return Party(self.name, self.user_id or "")

    async def sign_up(self, plan: str, device: str = "laptop", role: str | None = None) -> Device:
        tokens = await self.cast.api.register(self.email, self.password, display_name=self.name,
                                               plan=plan, device_type=device_type(device), role=role)
        self.plan, self.user_id = plan, tokens.user_id
        self.cast.leak_detector.own(self.party, tokens.user_id, "user id")
        self.cast.leak_detector.own(self.party, self.email, "e-mail address")
        return self._adopt(device, tokens)

    async def sign_in(self, device: str) -> Device:
        if device in self.devices:
            return self.devices[device]
        tokens = await self.cast.api.login(self.email, self.password, device_type(device),
                                            who=f"{self.name} signing in on the {device}")
        return self._adopt(device, tokens)

    def _adopt(self, device: str, tokens: SessionTokens) -> Device:
        self.cast.redactor.register(tokens.access_token, "access token")
        self.cast.redactor.register(tokens.refresh_token, "refresh token")
        entry = Device(self, device, tokens)
        self.devices[device] = entry
        self.cast.leak_detector.own(self.party, tokens.session_id, f"session id ({device})")
        return entry

    def device(self, name: str) -> Device:
        try:
            return self.devices[name]
        except KeyError:
            raise AssertionError(f"{self.name} has not signed in on a {name} in this scenario") from None

    def only_connected_device(self) -> Device:
        connected = [d for d in self.devices.values() if d.connection is not None]
        if len(connected) != 1:
            raise AssertionError(f"{self.name} is connected from {len(connected)} devices; "
                                 f"the feature must say which one (\"... from her laptop\")")
        return connected[0]

    def last_request(self) -> AgentRequest:
        if not self.requests:
            raise AssertionError(f"{self.name} has not asked the agent anything in this scenario")
        return self.requests[-1]

    async def connect(self, device: str, carrier: str | None = "bearer header", token: str | None = None, *,
                      instance: Instance | None = None, endpoint: str = "websocket", path_user: str | None = None,
                      origin: str | None | object = DEFAULT_ORIGIN, headers: dict | None = None,
                      welcome: bool = True, recorded: bool = True) -> RecordedConnection:
        """Open a socket from ``device``, by default with the session's own token in the bearer header.

        Every call opens one more socket (a browser tab); the device keeps them all, and the
        scenario's report shows their transcripts, unless ``recorded`` is False. The leak
        detector reads every socket either way. Raises HandshakeRefused if the target refuses.
        """
        entry = await self.sign_in(device)
        instance = instance or self.cast.instance
        connection = RecordedConnection(entry.party, self.cast.leak_detector, speaks_envelope=endpoint != "mcp")
        if recorded:
            self.cast.connections.append(connection)
            entry.tabs.append(connection)
        if carrier is not None and token is None:
            token = entry.tokens.access_token
        await connection.open(
            instance.socket_url(endpoint, path_user or self.user_id), carrier=carrier, token=token,
            timeout=self.cast.timeout, headers=headers,
            origin=instance.default_origin if origin is DEFAULT_ORIGIN else origin)
        if welcome:
            await connection.wait_for(lambda f: f.type == "connected", "the welcome frame", self.cast.timeout)
        return connection

    async def try_connect(self, device: str, carrier: str | None, token: str | None = None,
                          **options) -> HandshakeRefused | RecordedConnection:
        """Attempt a handshake that may be refused; return the refusal instead of raising."""
        try:
            return await self.connect(device, carrier, token, **options)
        except HandshakeRefused as refusal:
            return refusal

    async def ask(self, device: str | None, question: str, extra: dict | None = None,
                  legacy: bool = False) -> AgentRequest:
        """Send ``question`` to the agent from ``device``, tagged with a private marker.

        ``device`` None: the only connected device. ``legacy``: in the older message shape.
        """
        entry = self.device(device) if device else self.only_connected_device()
        connection = self._open_connection(entry)
        marker = self.cast.leak_detector.private_marker(entry.party, SESSION)
        request = AgentRequest(connection.next_id("chat"), entry, question, marker,
                               len(connection.transcript))
        self.requests.append(request)
        payload = {"text": f"{question} (ref {marker})", **(extra or {})}
        if legacy:
            await connection.send({"event": "chat", "request_id": request.id, "data": payload})
        else:
            await connection.send({"type": "chat", "id": request.id, "payload": payload})
        return request

    async def create_thread(self, device: str, title: str, scope: str) -> str:
        """Create a conversation thread from ``device``; its id and title are private to its owner."""
        entry = self.device(device)
        connection = self._open_connection(entry)
        marker = self.cast.leak_detector.private_marker(entry.party if scope == SESSION else self.party, scope)
        thread_id = connection.next_id("thread")
        since = await connection.send({"type": "thread_create", "id": thread_id,
                                       "payload": {"title": f"{title} (ref {marker})", "scope": scope}})
        reply = await connection.wait_for(lambda f: f.id == thread_id, f"the thread {title!r}", self.cast.timeout, since)
        if reply.type != "thread_created":
            raise AssertionError(f"{entry} could not create the thread {title!r}: {reply.text}")
        created = reply.message["payload"]["thread_id"]
        self.cast.leak_detector.own(entry.party if scope == SESSION else self.party, created, f"thread {title!r}", scope)
        return created

    async def thread_request(self, device: str, action: str, thread_id: str, text: str | None = None):
        """Read, write to or subscribe to a thread; return the service's answer frame."""
        connection = self._open_connection(self.device(device))
        request_id = connection.next_id("thread")
        payload = {"thread_id": thread_id}
        if action == "write to":
            payload["text"] = text or "A note from " + self.name
        since = await connection.send({"type": THREAD_ACTIONS[action], "id": request_id, "payload": payload})
        return await connection.wait_for(lambda f: f.id == request_id, f"the answer to {action} a thread",
                                         self.cast.timeout, since)

    async def answer_to(self, request: AgentRequest) -> list:
        """Wait for the run to end; return the agent events that carried the request's id."""
        connection = self._open_connection(request.device)
        await connection.wait_for(
            lambda f: f.id == request.id and f.type in ("agent_completed", "error"),
            f"the end of the agent's run for {request.question!r}", self.cast.timeout,
            request.sent_index)
        return [f for f in connection.received(request.sent_index) if f.id == request.id]

    async def silent_connection(self, device: str, instance: Instance) -> SilentClient:
        """Connect from ``device`` with a client that never answers a heartbeat; return it once closed."""
        entry = await self.sign_in(device)
        headers = {"Authorization": f"Bearer {entry.tokens.access_token}"}
        if instance.default_origin:
            headers["Origin"] = instance.default_origin
        heartbeat = instance.config.get("heartbeat", {})
        patience = 2 * (heartbeat.get("interval_seconds", 25) + heartbeat.get("timeout_seconds", 20)) + 2
        client = SilentClient(instance.socket_url(), headers)
        await client.run(timeout=patience)
        return client

    async def churn(self, device: str, times: int) -> None:
        """Connect from ``device`` and disconnect again, ``times`` times, one after the other.

        These sockets are read by the leak detector but kept out of the scenario's
        transcripts: a thousand handshakes would bury the report.
        """
        for _ in range(times):
            await (await self.connect(device, recorded=False)).close()

    def _open_connection(self, entry: Device) -> RecordedConnection:
        if entry.connection is None or not entry.connection.is_open:
            raise AssertionError(f"{entry} has no open connection")
        return entry.connection


class Cast:
    """The actors of one scenario and the shared means they act with."""

    def __init__(self, instances: list[Instance], leak_detector: LeakDetector,
                 redactor: Redactor, timeout: float, run_tag: str):
        self.instances = instances
        self.instance = instances[0]
        self.api = self.instance.api
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

    async def fence_all(self, backstop: float, in_flight: int = 64) -> None:
        """Drain every open socket's delivery path (see RecordedConnection.fence).

        At most ``in_flight`` fences are outstanding at once: a burst of one per socket, at
        thousands of sockets, is a load test of its own that the sweep must not be. One
        backstop after the last fence is back covers every socket.
        """
        gate = asyncio.Semaphore(in_flight)

        async def fence(connection: RecordedConnection) -> None:
            async with gate:
                await connection.fence(self.timeout, backstop=0)

        await asyncio.gather(*(fence(c) for c in self.connections if c.is_open))
        await asyncio.sleep(backstop)

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)
