"""The baseline server of bench/handshake_latency.py: a bare ``websockets.serve`` that does the
reference backend's JWT check and nothing else.

It verifies the bearer token as the contract asks (HS256 signature, expiry, issuer,
audience, the required claims, UUID ``sub`` and ``sid``), refuses with 401 otherwise,
accepts and sends the welcome frame. No database, no Redis, no registry: what is left of a
handshake when everything but the token check is taken away.

    JWT_SECRET=... python -m bench.bare_server --fd N     (prints READY once listening)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import uuid
from http import HTTPStatus

import jwt
from websockets.asyncio.server import serve

REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "iss", "aud", "jti"]


def verify(token: str, secret: str, issuer: str, audience: str) -> tuple[str, str] | None:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience=audience, issuer=issuer,
                            options={"require": REQUIRED_CLAIMS})
        return str(uuid.UUID(claims["sub"])), str(uuid.UUID(claims["sid"]))
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        return None


async def run(listener: socket.socket, secret: str, issuer: str, audience: str) -> None:
    def check(connection, request):
        header = request.headers.get("Authorization", "")
        identity = verify(header[7:], secret, issuer, audience) if header.startswith("Bearer ") else None
        if identity is None:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "authentication required\n")
        connection.identity = identity
        return None

    async def handler(connection):
        user_id, session_id = connection.identity
        await connection.send(json.dumps({"type": "connected", "id": None, "payload": {
            "user_id": user_id, "session_id": session_id, "connection_id": str(uuid.uuid4())}}))
        async for _ in connection:
            pass

    async with serve(handler, sock=listener, process_request=check, ping_interval=None):
        print("READY", flush=True)
        await asyncio.get_running_loop().create_future()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="an inherited listening loopback socket")
    parser.add_argument("--issuer", default="reference-backend")
    parser.add_argument("--audience", default="chat-clients")
    options = parser.parse_args()
    secret = os.environ.get("JWT_SECRET")
    if not secret:
        sys.exit("JWT_SECRET must be set: the bare server checks tokens signed with it")
    listener = socket.socket(fileno=options.fd)
    try:
        asyncio.run(run(listener, secret, options.issuer, options.audience))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
