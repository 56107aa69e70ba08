"""Every operation of the contract performed with private data, and replayed by someone it does not belong to.

``perform`` is how an actor's device performs one operation of the inventory
(support/operations.py) the way an app would, with a private marker wherever the request
has room for one (a question, a title, a message, a request id, a display name), and checks
that it was answered as the contract documents. HTTP answers go through the leak detector as
received by the device that made the request, like every frame of its sockets.

``replay`` is what Autorize and RESTler do for HTTP requests, on live sockets: the owner's
request that names a resource (a thread, a session, a user id) is sent again by someone else
with their own credentials, or by the owner's other device when the resource belongs to one
device, and the answer is kept for the check: the contract's "not found" (or its refusal for
a claimed identity), and nothing of the owner's.

No behave here: the steps in steps/operation_steps.py parse and call these.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from .accounts import SessionTokens
from .connection import Frame, RecordedConnection
from .leaks import SESSION, USER, Party
from .operations import ENVELOPE, HTTP, TOOLS, Inventory, Operation
from .phrases import REPLAYED_THINGS, device_type

INVENTORY = Inventory.load()


@dataclass
class Answer:
    """What a request was answered: a frame on a socket, or an HTTP status and body."""

    operation: str
    frame: Frame | None = None
    status: int | None = None
    body: str = ""
    marker: str | None = None  # the private marker the request carried, if any

    @property
    def text(self) -> str:
        return self.frame.text if self.frame is not None else f"HTTP {self.status} {self.body[:300]}"

    @property
    def error_code(self) -> str | None:
        if self.frame is not None:
            message = self.frame.message or {}
            if message.get("type") == "error":
                return (message.get("payload") or {}).get("code")
            return None
        try:
            return json.loads(self.body).get("error") if self.body else None
        except (ValueError, AttributeError):
            return None


def watchers(cast, performer) -> list[Party]:
    """The parties with an open socket other than the performing device's: who is listening."""
    return list(dict.fromkeys(c.owner for c in cast.connections
                              if c.is_open and c.owner.session_id != performer.session_id))


async def start_threads_everywhere(actors) -> None:
    """Each device starts a thread kept to it, each person one for all their devices (private titles)."""
    for actor in actors:
        devices = actor.connected_devices()
        if not devices:
            raise AssertionError(f"{actor.name} is not connected from any device; connect them first")
        for entry in devices:
            entry.kept_thread = await actor.create_thread(entry.name, f"{entry} notes", "session")
        actor.shared_thread = await actor.create_thread(devices[0].name, f"{actor.name}'s shared notes", "user")


# -- performing an operation -------------------------------------------------------------

async def perform(actor, device: str, operation_id: str, *, operator_token: str | None = None) -> Answer:
    """``actor``'s ``device`` performs the operation, with private data; fail unless answered as documented."""
    operation = INVENTORY[operation_id]
    entry = actor.device(device)
    cast = actor.cast
    marker = cast.leak_detector.private_marker(entry.party, SESSION)
    if operation.surface == ENVELOPE:
        answer = await _perform_envelope(actor, entry, operation, marker)
    elif operation.surface == TOOLS:
        answer = await _perform_tools(actor, entry, operation, marker)
    else:
        answer = await _perform_http(actor, entry, operation, marker, operator_token)
    return answer


def _documented_success(operation: Operation, answer: Answer, who) -> Answer:
    """Fail unless the answer is one of the operation's documented replies that is not an error."""
    if answer.frame is not None:
        message = answer.frame.json
        if isinstance(message, dict) and "jsonrpc" in message:
            ok = "result" in message
        elif isinstance(message, list):
            ok = bool(message) and all("result" in item for item in message)
        else:
            ok = answer.frame.type in operation.returns and answer.frame.type != "error"
    else:
        ok = any(str(answer.status) == entry.split(" ")[0] for entry in operation.returns) and answer.status < 400
    if not ok:
        raise AssertionError(f"{who} performed {operation.id} ({operation.surface} {operation.request}) and was "
                             f"answered {answer.text}; expected one of {', '.join(operation.returns)}")
    return answer


async def _request(connection: RecordedConnection, message, reply_id, what: str, timeout: float,
                   matches=None) -> Frame:
    since = await connection.send(message)
    matches = matches or (lambda f: f.id == reply_id)
    return await connection.wait_for(matches, what, timeout, since)


async def _perform_envelope(actor, entry, operation: Operation, marker: str) -> Answer:
    cast = actor.cast
    connection = entry.open_connection()
    name = operation.request
    request_id = f"{name.replace(' ', '-')}-{marker}"
    if name in ("chat", "legacy chat"):
        request = await actor.ask(entry.name, "What did I write in my notes?", legacy=name == "legacy chat")
        frames = await actor.answer_to(request)
        frame = frames[-1]
    elif name == "legacy ping":
        frame = await _request(connection, {"event": "ping", "request_id": request_id}, request_id,
                               "the answer to its ping", cast.timeout)
    elif name in ("ping", "fence", "thread_list"):
        frame = await _request(connection, {"type": name, "id": request_id, "payload": {}}, request_id,
                               f"the answer to its {name}", cast.timeout,
                               matches=(lambda f: f.id == request_id and f.type in ("fence", "error"))
                               if name == "fence" else None)
    elif name == "reauthenticate":
        token = cast.tokens.mint(entry.tokens.user_id, entry.tokens.session_id)
        cast.redactor.register(token, "access token")
        frame = await _request(connection, {"type": name, "id": request_id, "payload": {"token": token}},
                               request_id, "the answer to its renewal", cast.timeout)
    elif name == "thread_create":
        thread = await actor.create_thread(entry.name, f"Plans of {entry}", "session")
        frame = next(f for f in reversed(connection.received()) if f.type == "thread_created" and thread in f.text)
    elif name in ("thread_read", "thread_post", "thread_subscribe"):
        payload = {"thread_id": entry.kept_thread}
        if name == "thread_post":
            payload["text"] = f"A private note (ref {marker})"
        frame = await _request(connection, {"type": name, "id": request_id, "payload": payload}, request_id,
                               f"the answer to its {name}", cast.timeout)
    else:
        raise AssertionError(f"the harness cannot perform {operation.id} ({name}) yet: add it to support/replay.py")
    return _documented_success(operation, Answer(operation.id, frame), entry)


async def _tools_socket(actor, entry) -> RecordedConnection:
    """The device's tools socket (/ws/mcp), opened beside its envelope socket and kept for the scenario."""
    tools = getattr(entry, "tools_socket", None)
    if tools is None or not tools.is_open:
        tools = RecordedConnection(entry.party, actor.cast.leak_detector, speaks_envelope=False)
        actor.cast.connections.append(tools)
        instance = actor.cast.instance
        await tools.open(instance.socket_url("mcp", actor.user_id), carrier="bearer header",
                         token=entry.tokens.access_token, timeout=actor.cast.timeout, origin=instance.default_origin)
        entry.tools_socket = tools
    return tools


async def _perform_tools(actor, entry, operation: Operation, marker: str) -> Answer:
    tools = await _tools_socket(actor, entry)
    timeout = actor.cast.timeout
    method = operation.request
    if method == "batch":
        ids = [f"batch-{n}-{marker}" for n in range(2)]
        message = [{"jsonrpc": "2.0", "id": ids[0], "method": "ping"},
                   {"jsonrpc": "2.0", "id": ids[1], "method": "tools/list"}]
        frame = await _request(tools, message, None, "the answer to its batch", timeout,
                               matches=lambda f: isinstance(f.json, list) or
                               (isinstance(f.json, dict) and f.json.get("id") is None))
    else:
        request_id = f"{method.replace('/', '-')}-{marker}"
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if method == "tools/call":
            allowed = ((actor.cast.instance.config.get("plans") or {}).get(actor.plan) or {}).get("tools")
            tool = (allowed or actor.cast.instance.config.get("tools") or ["knowledge_lookup"])[0]
            message["params"] = {"name": tool, "arguments": {"query": f"my private notes (ref {marker})"}}
        frame = await _request(tools, message, None, f"the answer to {method}", timeout,
                               matches=lambda f: isinstance(f.json, dict) and f.json.get("id") == request_id)
    return _documented_success(operation, Answer(operation.id, frame), entry)


async def _perform_http(actor, entry, operation: Operation, marker: str, operator_token: str | None) -> Answer:
    cast = actor.cast
    api = cast.instance.api
    method, path = operation.request.split(" ", 1)
    receiver = entry.party
    if operation.id == "register":
        email = f"{actor.email.split('@')[0]}.second.{uuid.uuid4().hex[:6]}@example.test"
        response = await api.post(path, {"email": email, "password": actor.password,
                                         "display_name": f"{actor.name} (ref {marker})",
                                         "device_type": device_type(entry.name)})
        if response.status_code == 201:
            second = response.json()
            receiver = Party(f"{actor.name}'s second account", second["user_id"], second["session_id"], entry.name)
            _register_tokens(cast, second)
            cast.leak_detector.own(receiver, second["user_id"], "user id")
            cast.leak_detector.own(receiver, email, "e-mail address")
    elif operation.id == "login":
        response = await api.post(path, {"email": actor.email, "password": actor.password,
                                         "device_type": device_type("tablet")})
        if response.status_code == 200:
            data = response.json()
            _register_tokens(cast, data)
            cast.leak_detector.own(actor.party, data["session_id"], "session id (tablet)")
            receiver = Party(actor.name, data["user_id"], data["session_id"], "tablet")
    elif operation.id == "refresh":
        response = await api.post(path, {"refresh_token": entry.tokens.refresh_token})
        if response.status_code == 200:
            data = response.json()
            _register_tokens(cast, data)
            entry.previous_tokens.append(entry.tokens)
            entry.tokens = SessionTokens(data["user_id"], data["session_id"], data["access_token"],
                                         data["refresh_token"], int(data.get("expires_in", 0)))
    elif operation.id == "changeEntitlements":
        if not operator_token:
            raise AssertionError("changing entitlements needs the deployment's operator credential "
                                 "(OPERATOR_TOKEN); the suite holds none for this target")
        response = await api.post(path, {"user_id": actor.user_id, "plan": actor.plan}, operator_token)
    elif method == "POST":
        body = {"plan": actor.plan} if operation.id == "changePlan" else None
        response = await api.post(path, body, entry.tokens.access_token)
        if operation.id == "logout" and response.status_code < 400:
            # Signed out: the session's sockets close (4009); let them, so nobody sends on a closing one.
            for tab in (*entry.tabs, entry.tools_socket):
                if tab is not None:
                    await tab.wait_closed(cast.timeout)
    else:
        document = await api.document(path, operation.summary, any_status=True, as_operator=True)
        answer = Answer(operation.id, status=200, body=json.dumps(document))
        cast.leak_detector.inspect(receiver, answer.body)
        return _documented_success(operation, answer, entry)
    answer = Answer(operation.id, status=response.status_code, body=response.text)
    cast.leak_detector.inspect(receiver, cast.redactor.redact(answer.body))
    return _documented_success(operation, answer, entry)


def _register_tokens(cast, document: dict) -> None:
    cast.redactor.register(document.get("access_token", ""), "access token")
    cast.redactor.register(document.get("refresh_token", ""), "refresh token")


# -- replaying someone else's request ----------------------------------------------------

def owned_resource(owner, thing: str) -> str:
    """The id of the owner's resource a replay names (``thing``: one of phrases.REPLAYED_THINGS)."""
    if thing == "thread kept to the laptop":
        return owner.device("laptop").kept_thread
    if thing == "thread for all devices":
        return owner.shared_thread
    if thing == "user id":
        return owner.user_id
    if thing == "laptop's token":
        return owner.device("laptop").tokens.access_token
    raise ValueError(f"unknown thing to replay {thing!r}; the features know {', '.join(REPLAYED_THINGS)}")


async def replay(replayer, device: str, operation_id: str, owner, thing: str) -> Answer:
    """``replayer``'s ``device`` sends the operation naming ``owner``'s ``thing``, with its own credentials."""
    operation = INVENTORY[operation_id]
    entry = replayer.device(device)
    cast = replayer.cast
    connection = entry.open_connection()
    resource = owned_resource(owner, thing)
    marker = cast.leak_detector.private_marker(entry.party, SESSION)
    request_id = f"replay-{operation.request.replace(' ', '-')}-{marker}"
    if operation.surface != ENVELOPE:
        raise AssertionError(f"{operation.id} is not replayed on a socket; the harness replays envelope messages")
    payload: dict = {}
    name = operation.request
    if thing == "user id":
        payload["user_id"] = resource
        if name in ("thread_read", "thread_post", "thread_subscribe"):
            payload["thread_id"] = entry.kept_thread
    elif name == "reauthenticate":
        payload["token"] = resource
    else:
        payload["thread_id"] = resource
    if name == "thread_post":
        payload["text"] = f"Written by {replayer.name} (ref {marker})"
    elif name == "thread_create":
        payload.update(title=f"A thread of {replayer.name}'s (ref {marker})", scope="session")
    elif name in ("chat", "legacy chat"):
        payload["text"] = f"What did {owner.name} ask? (ref {marker})"
    elif name == "reauthenticate" and "token" not in payload:
        payload["token"] = entry.tokens.access_token
    message = ({"event": name.split(" ")[1], "request_id": request_id, "data": payload} if name.startswith("legacy")
               else {"type": name, "id": request_id, "payload": payload})
    since = await connection.send(message)
    entry.last_sent = since
    frame = await connection.wait_for(lambda f: f.id == request_id, f"the answer to its {name}", cast.timeout, since)
    answer = Answer(operation.id, frame, marker=marker)
    if answer.error_code == "reauthentication_refused":
        await connection.wait_closed(cast.timeout)  # the contract closes the socket (4003) after this refusal
    return answer


async def owner_reads_back(owner, thing: str) -> Frame:
    """The owner reads the replayed thread again from the device it belongs to (what is stored, as told)."""
    entry = owner.device("laptop") if thing == "thread kept to the laptop" else owner.connected_devices()[0]
    connection = entry.open_connection()
    request_id = connection.next_id("read-back")
    since = await connection.send({"type": "thread_read", "id": request_id,
                                   "payload": {"thread_id": owned_resource(owner, thing)}})
    return await connection.wait_for(lambda f: f.id == request_id, "its thread read back", owner.cast.timeout, since)


async def listen_out(entry, timeout: float, backstop: float) -> None:
    """Drain the device's socket, if it is still open (a refused renewal closes it), so nothing is in flight."""
    if entry.connection is not None and entry.connection.is_open:
        await entry.connection.fence(timeout, backstop)


# -- checks ------------------------------------------------------------------------------

def check_refused(answer: Answer, code: str, who, owner) -> None:
    """The replay was answered with the contract's refusal ``code``, and nothing else."""
    if answer.error_code != code:
        raise AssertionError(f"{who} replayed {owner.name}'s {answer.operation} and was answered "
                             f"{answer.text[:400]}; expected the error {code!r}")


def check_holds_nothing_of(read_back: Frame, answer: Answer, owner, thing: str, who) -> None:
    """What the owner reads back holds nothing the refused replay carried: the refusal left nothing stored."""
    if read_back.type != "thread":
        raise AssertionError(f"{owner.name} could not read her {thing} back: {read_back.text}")
    if answer.marker and answer.marker in read_back.text:
        raise AssertionError(f"{owner.name}'s {thing} holds what {who} wrote although the write was refused: "
                             f"{read_back.text[:400]}")
