"""A tiny, deliberately broken chat server: the specification's negative control.

The pytest suite runs the Gherkin specification against this server to prove that the
specification's checks can fail. It imitates docs/contract.md (sections 2 to 5 and 7) in
memory: no database, no Redis, a single process. It never imports the project's code.

    python -m tests.planted.server --defect NAME (--port N | --fd N)

JWT_SECRET must be set in the environment. Once listening, it prints `READY <port>`.

Defects (exactly one per run):
  none              behaves correctly: the specification passes against it (the control).
  leak              every agent event of a chat is also sent to every other connected socket,
                    of every user; fences still go only to the sending session, after the leaks.
  drop-event        the `tool_completed` agent event is never sent.
  accept-any-token  the handshake accepts any token that decodes as a JWT, without checking
                    signature, expiry, issuer or audience (no credentials at all is still 401).
  undocumented-field  the `connected` frame's payload carries a field the contract does not
                    list (`debug`, the server's host name).
  undocumented-frame  every socket gets a frame of a type the contract does not have
                    (`server_stats`) after its welcome.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import os
import secrets
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

DEFECTS = ("none", "leak", "drop-event", "accept-any-token", "undocumented-field", "undocumented-frame",
           "echo-token-subprotocol")
ISSUER, AUDIENCE, TTL, MARKER = "planted-server", "chat-clients", 900, "jwt-auth"
PLANS = ("free", "pro", "enterprise")
DEVICES = ("laptop_browser", "mobile_browser", "desktop_app", "tablet_browser")
AGENT_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")
CLAIMS = ["sub", "sid", "iat", "exp", "iss", "aud", "jti"]
CONFIG = {
    "version": "0.1.0",
    "mode": "development",
    "endpoints": {"websocket": "/ws", "config": "/ws/config", "health": "/health",
                  "register": "/auth/register", "login": "/auth/login"},
    "auth": {"methods": ["bearer_header", "subprotocol_jwt_prefix", "subprotocol_base64url"],
             "subprotocol_marker": MARKER, "algorithms": ["HS256"],
             "issuer": ISSUER, "audience": AUDIENCE, "access_token_ttl_seconds": TTL},
    "limits": {"max_connections_per_user": 3, "max_message_bytes": 8192, "messages_per_minute": 30},
    "heartbeat": {"interval_seconds": 25, "timeout_seconds": 20},
    "timeouts": {"handshake_seconds": 10},
    "agent": {"events": list(AGENT_EVENTS)},
}
UNAUTHORIZED = {"error": "unauthorized", "message": "authentication required"}


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def frame(type_: str, id_, payload: dict) -> str:
    ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": type_, "id": id_, "payload": payload, "ts": ts}, ensure_ascii=False)


@dataclass
class Conn:
    ws: WebSocket
    user_id: str
    session_id: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, text: str) -> None:
        try:
            async with self.lock:
                await self.ws.send_text(text)
        except Exception:  # a socket closing under us is not this server's concern
            pass


class Planted:
    def __init__(self, defect: str, secret: str) -> None:
        self.defect, self.secret = defect, secret
        self.users: dict[str, dict] = {}      # email -> {id, salt, hash}
        self.sessions: dict[str, str] = {}    # session id -> user id
        self.conns: list[Conn] = []

    # ---- HTTP ----------------------------------------------------------------
    def token_document(self, user_id: str, device_type: str) -> dict:
        sid, now = str(uuid.uuid4()), int(time.time())
        self.sessions[sid] = user_id
        claims = {"sub": user_id, "sid": sid, "iat": now, "exp": now + TTL, "iss": ISSUER,
                  "aud": AUDIENCE, "jti": uuid.uuid4().hex, "device_type": device_type}
        return {"user_id": user_id, "session_id": sid,
                "access_token": jwt.encode(claims, self.secret, algorithm="HS256"),
                "refresh_token": secrets.token_urlsafe(32), "token_type": "bearer", "expires_in": TTL}

    @staticmethod
    async def body(request: Request) -> dict | None:
        try:
            data = await request.json()
        except Exception:
            return None
        ok = isinstance(data, dict) and all(isinstance(data.get(k), str) and data[k] for k in ("email", "password"))
        return data if ok else None

    async def register(self, request: Request) -> JSONResponse:
        data = await self.body(request)
        plan, device = (data or {}).get("plan", "free"), (data or {}).get("device_type", "laptop_browser")
        if data is None or plan not in PLANS or device not in DEVICES:
            return error(422, "invalid_request", "email and password are required; plan and device_type must be valid")
        email = data["email"].strip().lower()
        if email in self.users:
            return error(409, "email_taken", "this email is already registered")
        salt = secrets.token_hex(8)
        user = {"id": str(uuid.uuid4()), "salt": salt, "hash": hashlib.sha256((salt + data["password"]).encode()).hexdigest()}
        self.users[email] = user
        return JSONResponse(self.token_document(user["id"], device), status_code=201)

    async def login(self, request: Request) -> JSONResponse:
        data = await self.body(request)
        if data is None or data.get("device_type") not in DEVICES:
            return error(422, "invalid_request", "email, password and a valid device_type are required")
        user = self.users.get(data["email"].strip().lower())
        digest = user and hashlib.sha256((user["salt"] + data["password"]).encode()).hexdigest()
        if not user or not secrets.compare_digest(digest, user["hash"]):
            return error(401, "invalid_credentials", "wrong email or password")
        return JSONResponse(self.token_document(user["id"], data["device_type"]))

    async def config(self, request: Request) -> JSONResponse:
        return JSONResponse(CONFIG)

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "database": "ok", "redis": "ok", "version": CONFIG["version"]})

    # ---- handshake -----------------------------------------------------------
    @staticmethod
    def carried_token(ws: WebSocket) -> str | None:
        """The token from the first carrier present, "" for a carrier that is unreadable."""
        auth = ws.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        offered = ws.scope.get("subprotocols", [])
        for proto in offered:
            if proto.startswith("jwt."):
                return proto[4:]
        if MARKER in offered:
            for proto in offered:
                if proto != MARKER:
                    try:
                        return base64.urlsafe_b64decode(proto + "=" * (-len(proto) % 4)).decode("ascii")
                    except Exception:
                        return ""
        return None

    def identity(self, token: str) -> tuple[str, str] | None:
        try:
            if self.defect == "accept-any-token":  # DEFECT: no signature, exp, iss or aud check
                claims = jwt.decode(token, options={"verify_signature": False})
                return str(claims.get("sub", uuid.uuid4())), str(claims.get("sid", uuid.uuid4()))
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], issuer=ISSUER,
                                audience=AUDIENCE, options={"require": CLAIMS})
        except jwt.PyJWTError:
            return None
        if self.sessions.get(str(claims["sid"])) != claims["sub"]:
            return None  # unknown user or session, or a session of someone else
        return claims["sub"], claims["sid"]

    # ---- socket --------------------------------------------------------------
    async def websocket(self, ws: WebSocket) -> None:
        token = self.carried_token(ws)
        who = self.identity(token) if token else None
        if who is None:
            await ws.send_denial_response(JSONResponse(UNAUTHORIZED, status_code=401))
            return
        offered = ws.scope.get("subprotocols", [])
        if self.defect == "echo-token-subprotocol":  # DEFECT: selects the offered token, not the marker
            tokens = [p for p in offered if p != MARKER]
            await ws.accept(subprotocol=tokens[0] if tokens else (MARKER if MARKER in offered else None))
        else:
            await ws.accept(subprotocol=MARKER if MARKER in offered else None)
        conn = Conn(ws, *who)
        welcome = {"user_id": conn.user_id, "session_id": conn.session_id, "connection_id": conn.id}
        if self.defect == "undocumented-field":  # DEFECT: a field the contract does not list
            welcome["debug"] = {"host": socket.gethostname()}
        await conn.send(frame("connected", None, welcome))
        if self.defect == "undocumented-frame":  # DEFECT: a frame type the contract does not have
            await conn.send(frame("server_stats", None, {"sockets": len(self.conns) + 1}))
        self.conns.append(conn)
        try:
            while (message := await ws.receive())["type"] != "websocket.disconnect":
                await self.handle(conn, message.get("text") or "")  # a binary frame is not JSON text
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.conns.remove(conn)

    async def publish(self, session_id: str, text: str) -> None:
        """The in-memory stand-in for the fan-out: every socket of one session."""
        for conn in [c for c in self.conns if c.session_id == session_id]:
            await conn.send(text)

    async def handle(self, conn: Conn, raw: str) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return await conn.send(frame("error", None, {"code": "invalid_json", "message": "frame is not JSON"}))
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return await conn.send(frame("error", None, {"code": "invalid_message",
                                                         "message": "expected an object with a string type"}))
        type_, id_, payload = msg["type"], msg.get("id"), msg.get("payload")
        if type_ == "ping":
            await conn.send(frame("pong", id_, {}))
        elif type_ == "fence":
            await self.publish(conn.session_id, frame("fence", id_, {}))
        elif type_ == "chat":
            text = payload.get("text") if isinstance(payload, dict) else None
            if not isinstance(text, str):
                return await conn.send(frame("error", id_, {"code": "missing_field", "field": "text",
                                                            "message": "payload.text is required"}))
            await self.chat(conn, id_, text)
        else:
            await conn.send(frame("error", id_, {"code": "unknown_type", "message": f"unknown type {type_!r}",
                                                 "type": type_}))

    async def chat(self, conn: Conn, id_, text: str) -> None:
        run = {"run_id": str(uuid.uuid4()), "agent": "assistant"}
        tool = {**run, "tool": "knowledge_lookup"}
        events = [
            ("agent_started", run),
            ("agent_thinking", {**run, "thought": f'The user asks: "{text}". I will look it up.'}),
            ("tool_executing", {**tool, "input": f"search: {text}"}),
            ("tool_completed", {**tool, "output": "3 results found"}),
            ("agent_completed", {**tool, "answer": f'You asked "{text}". Here is what I found: 3 results.'}),
        ]
        for type_, payload in events:
            if self.defect == "drop-event" and type_ == "tool_completed":
                continue  # DEFECT: one agent event is never sent
            text_frame = frame(type_, id_, payload)
            if self.defect == "leak":  # DEFECT: a copy to every socket outside the session
                for other in [c for c in self.conns if c.session_id != conn.session_id]:
                    await other.send(text_frame)
            await self.publish(conn.session_id, text_frame)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/auth/register", self.register, methods=["POST"]),
            Route("/auth/login", self.login, methods=["POST"]),
            Route("/ws/config", self.config, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            WebSocketRoute("/ws", self.websocket),
        ])


class ReadyServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, port: int) -> None:
        super().__init__(config)
        self.port = port

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            port = self.port or self.servers[0].sockets[0].getsockname()[1]
            print(f"READY {port}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Deliberately broken chat server (test fixture).")
    parser.add_argument("--defect", required=True, help="one of: " + ", ".join(DEFECTS))
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT (0 picks a free port)")
    where.add_argument("--fd", type=int, help="serve on an inherited, already listening socket")
    args = parser.parse_args(argv)
    if args.defect not in DEFECTS:
        sys.exit(f"unknown defect {args.defect!r}; valid defects: {', '.join(DEFECTS)}")
    secret = os.environ.get("JWT_SECRET")
    if not secret:
        sys.exit("JWT_SECRET must be set in the environment")
    app = Planted(args.defect, secret).app()
    common = dict(log_level="warning", access_log=False, lifespan="off")
    if args.fd is not None:
        with socket.socket(fileno=os.dup(args.fd)) as probe:  # the family is detected from the fd
            port = probe.getsockname()[1]
        config = uvicorn.Config(app, fd=args.fd, **common)
    else:
        port, config = args.port, uvicorn.Config(app, host="127.0.0.1", port=args.port, **common)
    # uvicorn's sans-I/O protocol logs a spurious ERROR after every (correct) denial response.
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: "returned without completing handshake" not in record.getMessage())
    ReadyServer(config, port).run()


if __name__ == "__main__":
    main()
