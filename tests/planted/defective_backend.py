"""The reference backend with one planted defect: the negative control for the connection contract.

    python -m tests.planted.defective_backend --defect NAME [--fd N | --host H --port P] [--log-level L]

It imports the `backend` package, applies exactly one named monkeypatch, then runs the
backend exactly as `python -m backend` does, with the same environment variables
(backend/config.py) and the same options. `--defect none` patches nothing: the control.

The backend itself has no switch for any of this. Each defect is one small function below,
the kind of bug a developer could write, patched onto a stable name of the backend (a
module function, a class method, a module constant, a line of a Lua script). Every patch
first checks that its target still exists and looks as expected; if the backend moved it,
the process exits with an error naming the patch point instead of silently running a
correct server.

`python -m tests.planted.defective_backend --list` prints every defect with what it breaks.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import backend.__main__ as entry
from backend import app, auth, chat, connection, mcp, messages, ratelimit, registry, tokens, websocket

log = logging.getLogger("backend.planted")

DEFECTS: dict[str, Callable[[], None]] = {}


class PatchPointMissing(RuntimeError):
    """The backend no longer has what a defect patches; the message names it."""


def defect(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(plant: Callable[[], None]) -> Callable[[], None]:
        DEFECTS[name] = plant
        return plant
    return register


def original(owner: Any, attribute: str) -> Any:
    """``owner.attribute`` as the backend defines it; PatchPointMissing if it is gone."""
    try:
        return getattr(owner, attribute)
    except AttributeError:
        where = getattr(owner, "__name__", type(owner).__name__)
        raise PatchPointMissing(f"{where}.{attribute} no longer exists") from None


def patch(owner: Any, attribute: str, replacement: Any) -> None:
    original(owner, attribute)
    setattr(owner, attribute, replacement)


def patch_text(owner: Any, attribute: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in a string constant (a Lua script), which must contain it once."""
    text = original(owner, attribute)
    if text.count(old) != 1:
        raise PatchPointMissing(f"{owner.__name__}.{attribute} no longer contains {old!r} exactly once")
    setattr(owner, attribute, text.replace(old, new))


def server_options(change: Callable[[dict[str, Any]], None]) -> None:
    """Change the options `python -m backend` hands to uvicorn.Config, as an edit of main() would."""
    real = original(entry, "uvicorn")
    real_config = original(real, "Config")

    class Uvicorn:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        def Config(app: Any, **options: Any) -> Any:  # noqa: N802 - uvicorn's name
            change(options)
            return real_config(app, **options)

    entry.uvicorn = Uvicorn()


# -- the defects ----------------------------------------------------------------------------

@defect("none")
def plant_nothing() -> None:
    """Nothing: the reference backend as it is (the control)."""


@defect("expiry-never-armed")
def plant_expiry_never_armed() -> None:
    """AUTH-05: a socket's token expiry timer is never armed, so it outlives its token."""
    patch(connection.Connection, "arm_expiry", lambda self: None)


@defect("reauth-adopts-any-token")
def plant_reauth_adopts_any_token() -> None:
    """AUTH-06: reauthenticate takes over the identity of any valid token instead of comparing it."""
    reauthenticate = original(chat.ChatConnection, "reauthenticate")

    @functools.wraps(reauthenticate)
    async def adopting(self, message):
        grant = tokens.verify_access_token(self.state.config, message.payload["token"])
        if grant is not None:
            self.identity = grant.identity
        await reauthenticate(self, message)

    chat.ChatConnection.reauthenticate = adopting


@defect("dev-login-in-production")
def plant_dev_login_in_production() -> None:
    """AUTH-07: the developer login forgets to check the mode, so production accepts it too."""
    developer_login = original(auth, "developer_login")

    @functools.wraps(developer_login)
    async def any_mode(conn, config, *rest):
        return await developer_login(conn, replace(config, mode="development"), *rest)

    auth.developer_login = any_mode


@defect("path-user-unchecked")
def plant_path_user_unchecked() -> None:
    """ISO-03: the user id in /ws/{user_id} is never compared with the token's user."""
    patch(websocket, "_path_user_matches", lambda websocket, grant: True)


@defect("thread-owner-revealed")
def plant_thread_owner_revealed() -> None:
    """ISO-06: another user's thread is refused with a different message than a missing one."""
    visible_thread = original(chat.ChatConnection, "visible_thread")

    @functools.wraps(visible_thread)
    async def telling(self, message):
        try:
            return await visible_thread(self, message)
        except messages.ProtocolError as refusal:
            try:
                thread_id = uuid.UUID(message.payload["thread_id"])
            except ValueError:
                raise refusal from None
            if await self.state.pool.fetchval("SELECT 1 FROM user_threads WHERE id = $1", thread_id):
                raise messages.ProtocolError("not_found", "this thread is not yours", message.id) from None
            raise

    chat.ChatConnection.visible_thread = telling


@defect("limit-off-by-one")
def plant_limit_off_by_one() -> None:
    """CONN-01: the registry evicts only beyond limit + 1 sockets (one socket too many stays open)."""
    patch_text(registry, "REGISTER", "- tonumber(ARGV[2])", "- tonumber(ARGV[2]) - 1")


@defect("eviction-ignored")
def plant_eviction_ignored() -> None:
    """CONN-01: a socket pushed out of the limit is dropped from the registry but never closed."""
    patch(connection.Connection, "replaced", lambda self: log.info("connection %s was replaced", self.id))


@defect("never-pings")
def plant_never_pings() -> None:
    """CONN-02: the heartbeat interval is not passed to the server, which then never pings."""
    server_options(lambda options: options.update(ws_ping_interval=None))


@defect("never-drops-silent-clients")
def plant_never_drops_silent_clients() -> None:
    """CONN-02: the heartbeat timeout is not passed to the server: pings go out, silence is never punished."""
    server_options(lambda options: options.update(ws_ping_timeout=None))


@defect("heartbeat-interval-floored")
def plant_heartbeat_interval_floored() -> None:
    """CONN-02: the heartbeat interval is floored at 2 s, so pings come less often than advertised."""
    server_options(lambda options: options.update(ws_ping_interval=max(2, options["ws_ping_interval"])))


@defect("three-missed-heartbeats")
def plant_three_missed_heartbeats() -> None:
    """CONN-02: a silent client is dropped only after three heartbeat timeouts, not one."""
    server_options(lambda options: options.update(ws_ping_timeout=3 * options["ws_ping_timeout"]))


@defect("closed-sockets-counted")
def plant_closed_sockets_counted() -> None:
    """CONN-03: unregister removes a socket from Redis but keeps it in the instance's own count."""
    unregister = original(registry.Registry, "unregister")

    @functools.wraps(unregister)
    async def keeping(self, connection_id):
        entry = self._local.get(connection_id)
        await unregister(self, connection_id)
        if entry is not None:
            self._local[connection_id] = entry

    registry.Registry.unregister = keeping


@defect("no-handshake-timeout")
def plant_no_handshake_timeout() -> None:
    """CONN-04: the server runs uvicorn's plain h11 protocol, which waits for a request forever."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    patch(entry, "with_deadline", lambda seconds: H11Protocol)


LEAKED: list[bytes] = []


@defect("connection-leak")
def plant_connection_leak() -> None:
    """CONN-05: every connection keeps a 20 KB buffer in a module-level list that is never emptied."""
    init = original(connection.Connection, "__init__")

    @functools.wraps(init)
    def leaking(self, *args, **kwargs):
        init(self, *args, **kwargs)
        LEAKED.append(os.urandom(20 * 1024))

    connection.Connection.__init__ = leaking


@defect("pong-without-id")
def plant_pong_without_id() -> None:
    """MSG-01: the pong to a ping does not carry the ping's id."""
    async def ping(self, message):
        self.send(messages.frame("pong", None, {}))

    patch(chat.ChatConnection, "ping", ping)


@defect("unknown-method-invalid-request")
def plant_unknown_method_invalid_request() -> None:
    """MSG-02: an unknown JSON-RPC method is answered -32600 (Invalid Request) instead of -32601."""
    patch(mcp, "METHOD_NOT_FOUND", mcp.INVALID_REQUEST)


@defect("notifications-answered")
def plant_notifications_answered() -> None:
    """MSG-02: a JSON-RPC notification (no id) is treated as a request with id null, and answered."""
    answer = original(mcp, "answer")

    @functools.wraps(answer)
    def answering(request, run):
        if isinstance(request, dict) and "id" not in request:
            request = {**request, "id": None}
        return answer(request, run)

    mcp.answer = answering


@defect("bad-json-closes")
def plant_bad_json_closes() -> None:
    """MSG-03: after answering invalid_json the server also closes the socket (1003)."""
    on_text = original(chat.ChatConnection, "on_text")

    @functools.wraps(on_text)
    async def closing(self, text):
        await on_text(self, text)
        try:
            json.loads(text)
        except ValueError:
            self.close(1003, "invalid JSON")

    chat.ChatConnection.on_text = closing


@defect("unknown-type-unnamed")
def plant_unknown_type_unnamed() -> None:
    """MSG-04: the unknown_type error no longer says which type it did not know."""
    parse = original(chat, "parse")

    @functools.wraps(parse)
    def vague(text):
        try:
            return parse(text)
        except messages.ProtocolError as refusal:
            if refusal.code == "unknown_type":
                raise messages.ProtocolError("unknown_type", "unknown message type", refusal.id) from None
            raise

    chat.parse = vague


@defect("legacy-chat-untranslated")
def plant_legacy_chat_untranslated() -> None:
    """MSG-05: the legacy translation table lacks `chat`, so an older app's question is refused."""
    if "chat" not in original(messages, "LEGACY_EVENTS"):
        raise PatchPointMissing("messages.LEGACY_EVENTS no longer holds 'chat'")
    messages.LEGACY_EVENTS = tuple(event for event in messages.LEGACY_EVENTS if event != "chat")


@defect("no-size-limit")
def plant_no_size_limit() -> None:
    """LIM-01: the size limit is not passed to the server (uvicorn's 16 MiB default applies)."""
    server_options(lambda options: options.pop("ws_max_size"))


@defect("rate-limit-off-by-one")
def plant_rate_limit_off_by_one() -> None:
    """LIM-02: the rate limit refuses only past limit + 1 messages (`>` instead of `>=`)."""
    patch_text(ratelimit, "CHECK", ">= tonumber(ARGV[1])", "> tonumber(ARGV[1])")


@defect("rate-limit-per-socket")
def plant_rate_limit_per_socket() -> None:
    """LIM-02: the rate window is kept per socket, not per user, so a second device gets a fresh allowance."""
    retry_after = original(connection.Connection, "retry_after")
    sockets: dict = {}

    async def per_socket(self):
        key = sockets.setdefault(id(self), uuid.uuid4())
        return await self.state.limiter.retry_after(key, self.plan.messages_per_minute)

    connection.Connection.retry_after = per_socket


@defect("no-retry-after")
def plant_no_retry_after() -> None:
    """LIM-02: the rate_limited error says when to retry in its text only, not in retry_after_seconds."""
    error_frame = original(chat, "error_frame")

    @functools.wraps(error_frame)
    def without_hint(code, message, id=None, **extra):
        extra.pop("retry_after_seconds", None)
        return error_frame(code, message, id, **extra)

    chat.error_frame = without_hint


@defect("origin-startswith")
def plant_origin_startswith() -> None:
    """LIM-03: the Origin is compared with startswith, so https://app.example.com.evil.test passes."""
    def origin_allowed(conn, config):
        origins = conn.headers.getlist("origin")
        if not origins:
            return not config.origin_required
        return any(origins[0].startswith(allowed) for allowed in config.allowed_origins)

    patch(websocket, "origin_allowed", origin_allowed)


@defect("no-versioned-path")
def plant_no_versioned_path() -> None:
    """ROUTE-01: the versioned alias /ws/v1/{user_id} is not routed."""
    create_app = original(entry, "create_app")

    @functools.wraps(create_app)
    def without_alias(config):
        served = create_app(config)
        routes = served.router.routes
        kept = [route for route in routes if getattr(route, "path", None) != "/ws/v1/{user_id}"]
        if len(kept) == len(routes):
            raise PatchPointMissing("the app has no route /ws/v1/{user_id}")
        served.router.routes = kept
        return served

    entry.create_app = without_alias


@defect("config-without-timeouts")
def plant_config_without_timeouts() -> None:
    """ROUTE-02: /ws/config forgets the `timeouts` section (the handshake timeout)."""
    config_document = original(app, "config_document")

    @functools.wraps(config_document)
    def forgetful(config):
        document = config_document(config)
        if "timeouts" not in document:
            raise PatchPointMissing("the config document has no `timeouts` section")
        del document["timeouts"]
        return document

    app.config_document = forgetful


@defect("secret-in-security-config")
def plant_secret_in_security_config() -> None:
    """ROUTE-03: /ws/secure/config publishes the token verification key (the signing secret)."""
    security_document = original(app, "security_document")

    @functools.wraps(security_document)
    def leaky(config):
        return {**security_document(config), "verification": {"algorithm": "HS256", "key": config.jwt_secret}}

    app.security_document = leaky


@defect("self-service-plan-in-production")
def plant_self_service_plan_in_production() -> None:
    """ROUTE-04: the self-service plan change skips its production check: anyone moves themselves to Enterprise."""
    from backend import account

    change_plan = original(account, "change_plan")

    @functools.wraps(change_plan)
    async def self_service(request):
        state = request.app.state
        mode, state.config = state.config.mode, replace(state.config, mode="development")
        try:
            return await change_plan(request)
        finally:
            state.config = replace(state.config, mode=mode)

    account.change_plan = self_service


@defect("health-details-public")
def plant_health_details_public() -> None:
    """ROUTE-04: the detailed health counts a request with no Authorization header as the operator's."""
    standing = original(auth, "operator_standing")

    def lenient(request, config):
        answer = standing(request, config)
        return auth.OPERATOR if answer == auth.NO_OPERATOR else answer

    auth.operator_standing = lenient


@defect("weak-secret-accepted")
def plant_weak_secret_accepted() -> None:
    """AUTH-12: the start-up check of the signing secret is gone: production starts with any secret."""
    patch(entry, "weak_secret", lambda secret: None)


@defect("secret-as-jwk")
def plant_secret_as_jwk() -> None:
    """ROUTE-03: /ws/secure/config publishes the signing secret as a JSON Web Key (base64url in `k`)."""
    security_document = original(app, "security_document")

    @functools.wraps(security_document)
    def leaky(config):
        k = base64.urlsafe_b64encode(config.jwt_secret.encode()).decode().rstrip("=")
        return {**security_document(config), "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": "k1", "k": k}]}}

    app.security_document = leaky


# -- the attack catalogue's defects (tests/test_planted_attack_defects.py) --------------------

@defect("alg-none-accepted")
def plant_alg_none_accepted() -> None:
    """AUTH-11: a token whose header names the algorithm none (in any case) is taken unsigned."""
    import jwt

    verify = original(tokens, "verify_access_token")

    @functools.wraps(verify)
    def trusting(config, token):
        try:
            alg = str(jwt.get_unverified_header(token).get("alg", ""))
        except jwt.PyJWTError:
            alg = ""
        if alg.lower() == "none":
            claims = jwt.decode(token, options={"verify_signature": False})
            return tokens.Grant(tokens.Identity(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])), int(claims["exp"]))
        return verify(config, token)

    tokens.verify_access_token = trusting
    auth.verify_access_token = trusting


@defect("key-url-fetched")
def plant_key_url_fetched() -> None:
    """AUTH-11: the key URL a token names (jku, x5u) is fetched before the token is refused."""
    import asyncio
    from urllib.parse import urlsplit

    import jwt

    verify_live = original(auth, "verify_live_token")

    @functools.wraps(verify_live)
    async def fetching(config, store, token):
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            header = {}
        for name in ("jku", "x5u"):
            if isinstance(header.get(name), str):
                parts = urlsplit(header[name])
                try:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), 1)
                    writer.write(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
                    await writer.drain()
                    await asyncio.wait_for(reader.read(1024), 1)
                    writer.close()
                except (OSError, asyncio.TimeoutError, ValueError):
                    pass
        return await verify_live(config, store, token)

    auth.verify_live_token = fetching


@defect("exp-not-required")
def plant_exp_not_required() -> None:
    """AUTH-11: `exp` is dropped from the required claims, so a token without an expiry never expires."""
    required = original(tokens, "REQUIRED_CLAIMS")
    if "exp" not in required:
        raise PatchPointMissing("tokens.REQUIRED_CLAIMS no longer holds 'exp'")
    tokens.REQUIRED_CLAIMS = [claim for claim in required if claim != "exp"]
    # The grant's expiry then reads the claim leniently (none: the socket never expires).
    import jwt

    def decode_lenient(config, token):
        try:
            claims = jwt.decode(token, config.jwt_secret, algorithms=tokens.ALGORITHMS, audience=config.jwt_audience,
                                issuer=config.jwt_issuer, options={"require": tokens.REQUIRED_CLAIMS})
            exp = claims.get("exp")
            return tokens.Grant(tokens.Identity(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])),
                                int(exp) if exp is not None else None)
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
            return None

    tokens.verify_access_token = decode_lenient
    auth.verify_access_token = decode_lenient


@defect("first-credential-wins")
def plant_first_credential_wins() -> None:
    """AUTH-10: of several credentials in one handshake the first is taken; the rest are ignored."""
    credentials = original(auth, "handshake_credentials")

    @functools.wraps(credentials)
    def first_only(conn):
        return credentials(conn)[:1]

    auth.handshake_credentials = first_only


@defect("ungoverned-after-surrogate")
def plant_ungoverned_after_surrogate() -> None:
    """LIM-05: after a frame with a lone surrogate escape, the socket's close() does nothing: no
    expiry, sign-out or connection limit closes it any more."""
    on_text = original(chat.ChatConnection, "on_text")

    @functools.wraps(on_text)
    async def forgetting(self, text):
        await on_text(self, text)
        if messages.SURROGATE_ESCAPE.search(text):
            if self._expiry is not None:
                self._expiry.cancel()
            self.close = lambda code, reason: None
            self.arm_expiry = lambda: None

    chat.ChatConnection.on_text = forgetting


@defect("reserved-bits-ignored")
def plant_reserved_bits_ignored() -> None:
    """LIM-06: frames with reserved bits set (and no extension that defines them) are taken as if clear."""
    import dataclasses

    from websockets import frames

    check = original(frames.Frame, "check")

    @functools.wraps(check)
    def ignoring(self):
        return check(dataclasses.replace(self, rsv1=False, rsv2=False, rsv3=False))

    frames.Frame.check = ignoring


# -- the command line -------------------------------------------------------------------------

def describe(name: str) -> str:
    return (DEFECTS[name].__doc__ or "").strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.planted.defective_backend",
        description="Run the reference backend with one planted defect. Every other option and every "
                    "environment variable is python -m backend's.")
    parser.add_argument("--defect", help="the defect to plant ('none' for the control); see --list")
    parser.add_argument("--list", action="store_true", help="list the defects and what each breaks")
    args, backend_args = parser.parse_known_args(argv)
    if args.list:
        for name in DEFECTS:
            print(f"{name:32} {describe(name)}")
        return 0
    if args.defect not in DEFECTS:
        got = "no --defect given" if args.defect is None else f"unknown defect {args.defect!r}"
        print(f"error: {got}; valid defects: {', '.join(DEFECTS)}", file=sys.stderr)
        return 2
    try:
        DEFECTS[args.defect]()
    except PatchPointMissing as missing:
        print(f"error: cannot plant {args.defect!r}: {missing}; adapt tests/planted/defective_backend.py",
              file=sys.stderr)
        return 3
    print(f"planted defect {args.defect}: {describe(args.defect)}", file=sys.stderr, flush=True)
    return entry.main(backend_args)


if __name__ == "__main__":
    sys.exit(main())
