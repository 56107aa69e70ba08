"""Actors: the people of the features ("Alice on her laptop") and what they can do."""

from __future__ import annotations

import asyncio
import resource
import secrets
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

from .accounts import AccountApi, SessionTokens
from .connection import HandshakeRefused, RecordedConnection
from .instances import Instance
from .raw_socket import SilentClient, abandon_upgrade
from .leaks import SESSION, LeakDetector, Party
from .loop import bounded
from .phrases import DEVICE_TYPES, THREAD_ACTIONS, device_type, json_rpc_request, malformed_message
from .redaction import Redactor
from .tokens import TokenFactory
from .world import MissingStep, Remembered, remembered

DEFAULT_ORIGIN = object()  # the instance's own web app origin

AGENT_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")


def _allow_open_files(sockets: int) -> None:
    """Let this process hold ``sockets`` sockets and then some: raise its open-file limit up to the
    hard limit, or refuse in plain words when even that is too low."""
    needed = sockets + 256  # the run's own files, database and Redis connections, the HTTP pool
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise AssertionError(f"{sockets:,} sockets need about {needed:,} open files, and this process may open "
                             f"at most {hard:,}; raise the limit (ulimit -n {needed}) and run again")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else hard, hard))


# What each person of a group asks; the harness adds a private marker to every question.
PRIVATE_QUESTION = "What is {name}'s private balance, part {number}?"


@dataclass
class AgentRequest:
    """A question an actor asked from one device, with the marker that makes it traceable."""

    id: str
    device: "Device"
    question: str
    marker: str
    sent_index: int
    at: float = field(default_factory=time.time)  # wall-clock time it was sent


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

    # What the device's steps leave for later ones.
    token_expiry = Remembered("Given Alice is connected from her laptop with a token that expires in 2 seconds",
                              "a token with a known expiry")
    silent_client = Remembered("When Alice's laptop connects and then stops answering heartbeats",
                               "a device that stopped answering heartbeats")
    open_before = Remembered("When Alice's laptop disconnects", "a disconnect")
    tunnel = Remembered('When Alice\'s phone loses its connection in a tunnel while her agent answers "Where is my parcel?"',
                        "a connection lost in a tunnel")
    kept_thread = Remembered("Given each of their devices has a thread of its own, and each of them one for all "
                             "their devices", "a thread kept to the device")
    tools_socket: RecordedConnection | None = None  # the device's /ws/mcp socket beside its envelope one
    last_sent: int = 0  # transcript index of the last message a step sent, where its answer is looked for

    def open_connection(self) -> RecordedConnection:
        """The device's open socket; fails in plain words when it has none."""
        if self.connection is None or not self.connection.is_open:
            state = "never connected" if self.connection is None else f"closed ({self.connection.close_code})"
            raise AssertionError(f"{self} has no open connection ({state}); "
                                 f"the scenario must connect it first (\"Given {self.actor.name} is connected "
                                 f"from her {self.name}\")")
        return self.connection

    def received_on(self) -> RecordedConnection:
        """The device's latest socket, open or closed: what it received stays readable after a close
        (a refusal is often followed at once by the close it announces)."""
        if self.connection is None:
            raise AssertionError(f"{self} never connected; the scenario must connect it first "
                                 f"(\"Given {self.actor.name} is connected from her {self.name}\")")
        return self.connection

    async def send(self, message) -> int:
        """Send one message on the open socket; remember where its answer is to be looked for."""
        self.last_sent = await self.open_connection().send(message)
        return self.last_sent

    async def ping(self, message_id: str | None = None) -> str:
        """An application-level ping with ``message_id`` (a fresh one if None)."""
        message_id = message_id or self.open_connection().next_id("ping")
        await self.send({"type": "ping", "id": message_id, "payload": {}})
        return message_id

    async def send_renewal(self, token: str) -> str:
        """Ask to renew the socket's token with ``token``; the answer is left to the step."""
        renew_id = self.open_connection().next_id("renew")
        await self.send({"type": "reauthenticate", "id": renew_id, "payload": {"token": token}})
        return renew_id

    async def renew(self, token: str, timeout: float) -> None:
        """Renew the open socket's token in place and wait until the service confirms."""
        renew_id = await self.send_renewal(token)
        reply = await self.connection.wait_for(lambda f: f.id == renew_id, "the answer to its renewal", timeout,
                                               self.last_sent)
        if reply.type != "reauthenticated":
            raise AssertionError(f"{self} renewed its token and was answered {reply.text}")

    async def renew_fresh(self, tokens: TokenFactory, timeout: float) -> None:
        """Renew the open socket with a freshly minted token of the same user and session."""
        token = tokens.mint(self.tokens.user_id, self.tokens.session_id)
        self.actor.cast.redactor.register(token, "access token")
        await self.renew(token, timeout)

    async def disconnect(self, instance: Instance) -> None:
        """Close the device's socket as the app does; remember how many sockets the instance counted before."""
        self.open_before = (await instance.security_health())["connections"]["open"]
        await self.open_connection().close()

    async def send_message_of(self, kilobytes: int) -> None:
        """A chat message whose text alone is ``kilobytes`` KB (a whole frame a little over)."""
        connection = self.open_connection()
        await self.send({"type": "chat", "id": connection.next_id("big"), "payload": {"text": "x" * (kilobytes * 1024)}})

    async def send_malformed(self, phrase: str) -> None:
        """One of the families of bad input the features name (support/phrases.py)."""
        await self.send(malformed_message(phrase, self.open_connection().next_id("bad")))

    async def send_invalid_utf8(self) -> None:
        """A text frame whose bytes are not UTF-8."""
        self.last_sent = await self.open_connection().send(b'{"type": "ping", "payload": "\xff\xfe"}', as_text=True)


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
    threads: list[str] = field(default_factory=list)
    daily_runs: int | None = None  # the daily allowance a feature stated ("may run the agent 5 times a day")

    # What the actor's steps leave for later ones.
    tools = Remembered("Given Alice connects her tools client from her laptop", "a tools client")
    burst = Remembered("When Alice asks her agent 31 questions within a minute", "a burst of questions")
    thread_answers = Remembered("When Bob tries to read Alice's thread", "an attempt on someone else's thread")
    http_answer = Remembered("When someone signs up again with Alice's e-mail address written in capital letters",
                             "an HTTP request whose answer is checked")
    shared_thread = Remembered("Given each of their devices has a thread of its own, and each of them one for all "
                               "their devices", "a thread for all of the person's devices")
    replayed = Remembered('When Bob replays Alice\'s "threadRead" naming her thread kept to her laptop',
                          "a replayed request")

    @property
    def party(self) -> Party:
        return Party(self.name, self.user_id or "")

    def add_to_burst(self, requests: list[AgentRequest]) -> None:
        """Questions asked in quick succession, checked together against a limit (several steps add up)."""
        self.burst = (self.burst if remembered(self, "burst") else []) + requests

    @property
    def last_thread(self) -> str:
        if not self.threads:
            raise AssertionError(f"this step needs a thread of {self.name}'s ('When {self.name} starts a thread "
                                 f"\"Plans\" on her laptop kept to that device') earlier in the scenario")
        return self.threads[-1]

    def connected_devices(self) -> list[Device]:
        return [d for d in self.devices.values() if d.connection is not None and d.connection.is_open]

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
        """The one device the actor is connected from; a sentence that names none relies on it."""
        connected = self.connected_devices() or [d for d in self.devices.values() if d.connection is not None]
        if len(connected) != 1:
            names = ", ".join(d.name for d in connected) or "no device"
            raise AssertionError(f"{self.name} is connected from {names}; the sentence must say which device "
                                 f"(\"... from her laptop\")")
        return connected[0]

    def device_or_only(self, device: str | None) -> Device:
        return self.device(device) if device else self.only_connected_device()

    def last_request(self) -> AgentRequest:
        if not self.requests:
            raise AssertionError(f"{self.name} has not asked the agent anything in this scenario")
        return self.requests[-1]

    async def connect(self, device: str, carrier: str | None = "bearer header", token: str | None = None, *,
                      instance: Instance | None = None, endpoint: str = "websocket", path_user: str | None = None,
                      origin: str | None | object = DEFAULT_ORIGIN, headers: dict | None = None,
                      welcome: bool = True, recorded: bool = True,
                      last_event_id: str | None = None) -> RecordedConnection:
        """Open a socket from ``device``, by default with the session's own token in the bearer header.

        Every accepted call opens one more socket (a browser tab); the device keeps them all,
        and the scenario's report shows their transcripts (a refused attempt's too), unless
        ``recorded`` is False. The leak detector reads every socket either way.
        ``last_event_id`` resumes after that event (docs/contract.md, section 6a). Raises
        HandshakeRefused if the target refuses.
        """
        entry = await self.sign_in(device)
        instance = instance or self.cast.instance
        connection = RecordedConnection(entry.party, self.cast.leak_detector, speaks_envelope=endpoint != "mcp")
        if recorded:
            self.cast.connections.append(connection)  # a refused handshake's transcript is evidence too
        if carrier is not None and token is None:
            token = entry.tokens.access_token
        url = instance.socket_url(endpoint, path_user or self.user_id)
        if last_event_id is not None:
            parameter = (instance.config.get("resume") or {}).get("query_parameter", "last_event_id")
            url += "?" + urlencode({parameter: last_event_id})
        await connection.open(
            url, carrier=carrier, token=token,
            timeout=self.cast.timeout, headers=headers,
            origin=instance.default_origin if origin is DEFAULT_ORIGIN else origin)
        if recorded:
            # A tab only once the handshake is accepted: a refused attempt is no socket of the device's.
            entry.tabs.append(connection)
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
        entry.last_sent = request.sent_index
        payload = {"text": f"{question} (ref {marker})", **(extra or {})}
        if legacy:
            await connection.send({"event": "chat", "request_id": request.id, "data": payload})
        else:
            await connection.send({"type": "chat", "id": request.id, "payload": payload})
        return request

    def only_signed_in_device(self) -> Device:
        if len(self.devices) != 1:
            names = ", ".join(self.devices) or "no device"
            raise AssertionError(f"{self.name} is signed in on {names}; the sentence must say which device")
        return next(iter(self.devices.values()))

    def any_device_name(self) -> str:
        """The device a sentence that names none means: the one the actor signed up or in on first."""
        return next(iter(self.devices), "laptop")

    async def try_connect_with(self, device: str, token_kind: str | None) -> HandshakeRefused | RecordedConnection:
        """A handshake with no token (None) or one deliberately bad in the way ``token_kind`` names."""
        entry = await self.sign_in(device)
        if token_kind is None:
            return await self.try_connect(device, None)
        bad = self.cast.tokens.bad_token(token_kind, entry.tokens.user_id, entry.tokens.session_id)
        return await self.try_connect(device, "bearer header", bad)

    async def developer_login(self, device: str) -> HandshakeRefused | RecordedConnection:
        """The contract's development login: no token, the user named by e-mail in X-Dev-User."""
        return await self.try_connect(device, None, headers={"X-Dev-User": self.email})

    async def connect_from_own_app(self, device: str) -> RecordedConnection:
        origin = self.cast.instance.default_origin
        if origin is None:
            raise AssertionError("the service publishes no allowed origin (/ws/secure/config allowed_origins)")
        return await self.connect(device, origin=origin)

    async def open_tabs(self, device: str, count: int, instances: list[Instance]) -> list[RecordedConnection]:
        """Open ``count`` sockets of one session at once, taking the instances in turn."""
        entry = await self.sign_in(device)
        # welcome=False: a tab may be closed by the limit before its welcome frame is read
        await asyncio.gather(*(self.connect(device, instance=instances[n % len(instances)], welcome=False)
                               for n in range(count)))
        return list(entry.tabs)

    async def connect_silently(self, device: str, instance: Instance) -> None:
        client = await self.silent_connection(device, instance)
        self.device(device).silent_client = client

    async def ask_question_of(self, kilobytes: int) -> AgentRequest:
        """A question whose whole frame stays just under ``kilobytes`` KB (room for envelope and marker)."""
        return await self.ask(None, ("How much is this? " * (kilobytes * 64))[: kilobytes * 1024 - 200])

    async def probe_thread(self, action: str, thread_id: str) -> None:
        """The same request for ``thread_id`` and for a thread that never existed; keep both answers."""
        device = self.only_connected_device()
        self.thread_answers = [await self.thread_request(device.name, action, target)
                               for target in (thread_id, str(uuid.uuid4()))]

    async def slip_answer_into(self, target: Device, fanout) -> list:
        """Publish a real frame of this actor's last answer on ``target``'s session channel, as a routing
        bug would; return what the leak detector caught of it."""
        from .fanout import session_channel

        request = self.last_request()
        events = await self.answer_to(request)
        await fanout.publish(session_channel(target.tokens.session_id), events[-1].text)
        await target.received_on().wait_for(lambda f: request.marker in f.text,
                                                f"the planted copy of {self.name}'s answer", self.cast.timeout)
        return self.cast.leak_detector.take_planted()

    async def ask_many(self, device: str | None, count: int, question: str = "Question number {number}",
                       wait: bool = False) -> list[AgentRequest]:
        """Ask ``count`` questions from one device, one after another; with ``wait``, each after the last answer."""
        entry = self.device_or_only(device)
        asked = []
        for number in range(1, count + 1):
            request = await self.ask(entry.name, question.format(number=number, name=self.name))
            asked.append(request)
            if wait:
                await self.answer_to(request)
        return asked

    async def connect_with_lifetime(self, device: str, seconds: float, tokens: TokenFactory) -> None:
        """Connect from ``device`` with a token of this session that expires in ``seconds``."""
        entry = await self.sign_in(device)
        token = tokens.mint(entry.tokens.user_id, entry.tokens.session_id, lifetime=seconds)
        self.cast.redactor.register(token, "access token")
        await self.connect(device, token=token)
        entry.token_expiry = tokens.expiry(token)

    async def connect_tools_client(self, device: str) -> "ToolsClient":
        self.tools = ToolsClient(await self.connect(device, endpoint="mcp", welcome=False), self.cast.timeout)
        return self.tools

    async def change_plan(self, plan: str) -> None:
        """Move to ``plan`` through the contract's plan change, from any session of the actor's."""
        device = await self.sign_in(next(iter(self.devices), "laptop"))
        await self.cast.api.change_plan(device.tokens.access_token, plan)
        self.plan = plan

    async def try_self_service_plan(self, plan: str) -> None:
        """Ask, with the actor's own sign-in, to be moved to ``plan`` (the development shortcut); keep the answer."""
        device = await self.sign_in(next(iter(self.devices), "laptop"))
        self.http_answer = await self.cast.api.post("/account/plan", {"plan": plan}, device.tokens.access_token)

    async def read_health_as_stranger(self) -> None:
        """Read the detailed health document with no credential at all; keep the answer."""
        self.http_answer = await self.cast.api.get(self.cast.instance.config.get("endpoints", {}).get(
            "secure_health", "/ws/secure/health"))

    async def sign_out(self, device: str) -> None:
        await self.cast.api.logout(self.device(device).tokens.access_token)

    async def sign_up_again(self, spelling) -> None:
        """Someone signs up with this actor's address again, spelled by ``spelling``; keep the answer."""
        self.http_answer = await self.cast.api.post(
            "/auth/register", {"email": spelling(self.email), "password": "another-password-123",
                               "device_type": device_type("laptop")})

    async def present_old_refresh_token(self, device: str) -> None:
        """Present the device's used-up refresh token again, as a thief would; keep the answer."""
        entry = self.device(device)
        if not entry.previous_tokens:
            raise AssertionError(f"{entry} has no used-up refresh token: this step needs "
                                 f"'Given {self.name}'s {device} has refreshed its session' earlier in the scenario")
        self.http_answer = await self.cast.api.post("/auth/refresh",
                                                    {"refresh_token": entry.previous_tokens[-1].refresh_token})

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
        self.threads.append(created)
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

    async def abandon_handshakes(self, device: str, count: int, instance: Instance | None = None) -> None:
        """Start ``count`` valid handshakes from ``device`` at once and hang up on each before the answer."""
        entry = await self.sign_in(device)
        instance = instance or self.cast.instance
        headers = {"Authorization": f"Bearer {entry.tokens.access_token}"}
        if instance.default_origin:
            headers["Origin"] = instance.default_origin
        await asyncio.gather(*(abandon_upgrade(instance.socket_url(), headers) for _ in range(count)))

    async def close_tabs(self, device: str) -> None:
        await asyncio.gather(*(tab.close() for tab in self.device(device).tabs))

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


class ToolsClient:
    """An integration's JSON-RPC 2.0 client on the tools address (/ws/mcp) of one actor's device."""

    last_reply = Remembered("When Alice's tools client asks for the list of tools", "a JSON-RPC request")

    def __init__(self, connection: RecordedConnection, timeout: float):
        self.connection = connection
        self.timeout = timeout
        self.batch_ids: set[int] = set()
        self.ping_id: int | None = None
        self.sent_at = 0

    async def call(self, method: str, params: dict | None = None) -> dict:
        self.last_reply = await self.connection.call(method, params, timeout=self.timeout)
        return self.last_reply

    def tool_names(self) -> list[str]:
        return [t.get("name") for t in (self.last_reply.get("result") or {}).get("tools", [])]

    async def call_tool(self, tool: str, arguments: dict) -> dict:
        return await self.call("tools/call", {"name": tool, "arguments": arguments})

    async def send_request(self, phrase: str):
        """Send one of the bad requests the features name; keep the reply frame."""
        since = await self.connection.send(json_rpc_request(phrase, 7))
        self.last_reply = await self.connection.wait_for(lambda f: f.json is not None, "a JSON-RPC reply",
                                                         self.timeout, since)

    async def send_batch(self, calls: int, notifications: int) -> None:
        batch = [{"jsonrpc": "2.0", "id": 100 + n, "method": "ping"} for n in range(calls)]
        batch += [{"jsonrpc": "2.0", "method": "ping"} for _ in range(notifications)]
        self.batch_ids = {100 + n for n in range(calls)}
        self.sent_at = await self.connection.send(batch)

    async def send_notification_then_ping(self) -> None:
        self.sent_at = await self.connection.send({"jsonrpc": "2.0", "method": "ping"})
        self.ping_id = await self.connection.send_call("ping")


class Cast:
    """The actors of one scenario and the shared means they act with."""

    # What a load profile asked, for the steps that check it (support/load_profile.py).
    load_run = Remembered("When each of them asks their agent 5 private questions from their laptop over a minute",
                          "questions asked over a period")
    # Handshakes a step that connects a whole group has in flight at once: a thousand people
    # connecting is a crowd arriving, not one burst ("at the same moment" is a step of its own).
    HANDSHAKES_IN_FLIGHT = 64

    def __init__(self, instances: list[Instance], leak_detector: LeakDetector,
                 redactor: Redactor, timeout: float, run_tag: str, tokens: TokenFactory | None = None):
        self.instances = instances
        self.instance = instances[0]
        self.api = self.instance.api
        self.leak_detector = leak_detector
        self.redactor = redactor
        self.timeout = timeout
        self.tokens = tokens
        self.connections: list[RecordedConnection] = []
        self._swept: int | None = None  # frames seen on every socket when the last full sweep ended
        self._acted_since_sweep = True
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

    def tools_client(self, name: str | None) -> "ToolsClient":
        """``name``'s tools client, or the only one of the scenario when the sentence names nobody."""
        if name is not None:
            return self.actor(name).tools
        clients = [a for a in self.actors if remembered(a, "tools")]
        if not clients:
            raise MissingStep(Actor.tools.sentence, Actor.tools.what)
        if len(clients) > 1:
            raise AssertionError(f"{len(clients)} people have tools clients; the sentence must say whose")
        return clients[0].tools

    def last_http_answer(self):
        answered = [a for a in self.actors if remembered(a, "http_answer")]
        if not answered:
            raise AssertionError("this step needs an HTTP request whose answer is checked ('When someone signs up "
                                 "again with Alice's e-mail address written in capital letters') earlier")
        return answered[-1].http_answer

    async def sign_up_crowd(self, count: int, plan: str) -> list[str]:
        """Sign up ``count`` people, as many at once as handshakes; their names, Visitor001 on."""
        names = [f"Visitor{number:03d}" for number in range(1, count + 1)]
        await bounded((self.actor(name).sign_up(plan) for name in names), self.HANDSHAKES_IN_FLIGHT)
        return names

    async def connect_each(self, people: list["Actor"], devices: list[str]) -> None:
        """Each person connects from each of ``devices``, at most HANDSHAKES_IN_FLIGHT handshakes at once."""
        _allow_open_files(len(self.connections) + len(people) * len(devices))
        wanted = len(people) * len(devices)

        async def connect(person: "Actor", device: str) -> None:
            try:
                await person.connect(device)
            except HandshakeRefused as refusal:
                opened = sum(1 for p in people for d in p.devices.values() if d.connection and d.connection.is_open)
                raise AssertionError(f"{person.name}'s {device} could not connect: {refusal}; {opened:,} of the "
                                     f"group's {wanted:,} sockets were open by then") from None

        await bounded((connect(person, device) for person in people for device in devices), self.HANDSHAKES_IN_FLIGHT)

    async def crowd(self, people: list["Actor"], forged: int) -> tuple[list, list]:
        """Everyone connects from their laptop at the same moment as ``forged`` strangers with forged tokens."""
        outcomes = await asyncio.gather(*(person.try_connect("laptop", "bearer header") for person in people),
                                        *(self.forged_handshake(self.instance) for _ in range(forged)),
                                        return_exceptions=True)
        return outcomes[:len(people)], outcomes[len(people):]

    def plan(self, plan: str) -> str:
        """``plan`` if the service publishes it; refused in plain words otherwise."""
        published = self.instance.config.get("plans")
        if published is not None and plan not in published:
            raise AssertionError(f"unknown plan {plan!r}: the service offers {', '.join(published)}")
        return plan

    def role(self, role: str) -> str:
        published = self.instance.config.get("roles")
        if published is not None and role not in published:
            raise AssertionError(f"unknown role {role!r}: the service knows {', '.join(published)}")
        return role

    def agent(self, agent: str) -> str:
        published = (self.instance.config.get("agent") or {}).get("names")
        if published is not None and agent not in published:
            raise AssertionError(f"unknown agent {agent!r}: the service offers {', '.join(published)}")
        return agent

    def instance_at(self, position: int) -> Instance:
        """The scenario's instance at ``position`` (1: the first), or a refusal naming how many there are."""
        if not 1 <= position <= len(self.instances):
            raise AssertionError(f"the scenario runs on {len(self.instances)} instance(s); instance {position} "
                                 f"names none (tag the scenario @instances.two for two)")
        return self.instances[position - 1]

    async def forged_handshake(self, instance: Instance) -> HandshakeRefused | RecordedConnection | BaseException:
        """A handshake by a stranger with a correctly shaped token signed with the wrong key."""
        token = self.tokens.bad_token("wrong signature", str(uuid.uuid4()), str(uuid.uuid4()))
        connection = RecordedConnection(Party("Mallory", "mallory"), self.leak_detector)
        self.connections.append(connection)
        try:
            return await connection.open(instance.socket_url(), carrier="bearer header", token=token,
                                         timeout=self.timeout, origin=instance.default_origin)
        except HandshakeRefused as refusal:
            return refusal

    async def fence_all(self, backstop: float, in_flight: int = 64) -> None:
        """Drain every open socket's delivery path (see RecordedConnection.fence).

        At most ``in_flight`` fences are outstanding at once: a burst of one per socket, at
        thousands of sockets, is a load test of its own that the sweep must not be. One
        backstop after the last fence is back covers every socket.
        """
        if self.drained_since_last_sweep():
            return
        fenced = [c for c in self.connections if c.is_open]
        await bounded((c.fence(self.timeout, backstop=0) for c in fenced), in_flight)
        if fenced:  # with no socket left open, nothing can still arrive on one
            await asyncio.sleep(backstop)
        self._swept = self._frames_seen()
        self._acted_since_sweep = False

    async def fence_one(self, connection: RecordedConnection, backstop: float) -> None:
        """Drain one socket's delivery path, unless a full sweep already has and nothing happened since."""
        if not self.drained_since_last_sweep():
            await connection.fence(self.timeout, backstop)

    def step_begins(self, keyword: str) -> None:
        """A step starts (environment.py). Any but a Then step may act (sign out, write, ask over HTTP)
        in ways no transcript shows, so after one the next check sweeps again."""
        if keyword != "then":
            self._acted_since_sweep = True

    def drained_since_last_sweep(self) -> bool:
        """A full sweep ended, and since then only Then steps ran and no socket saw a frame.

        Then every delivery path is still proven drained and nothing was sent that could put
        anything on one: sweeping again would only wait.
        """
        return not self._acted_since_sweep and self._swept == self._frames_seen()

    def _frames_seen(self) -> int:
        return sum(len(getattr(c, "transcript", ())) for c in self.connections)

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)
