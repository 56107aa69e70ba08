"""JSON-RPC 2.0 on /ws/mcp (contract section 11): the agent's tools for integrations.

A socket lists and calls only the tools its plan and role allow, as a chat would run them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from . import fanout
from .connection import Connection
from .messages import NotJsonText, encode, loads
from .plans import Plan, Role, refusal
from .tools import TOOLS

log = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
# In the range JSON-RPC leaves to servers; the contract's rate limit applies here too.
RATE_LIMITED, UNAVAILABLE = -32000, -32001

Result = dict[str, Any]


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.data = code, data

    def body(self) -> dict[str, Any]:
        error = {"code": self.code, "message": str(self)}
        if self.data is not None:
            error["data"] = self.data
        return error


def call(method: str, params: Any, plan: Plan, role: Role) -> Result:
    """Run one method for a socket on `plan` and `role`; raise RpcError with the standard code when it cannot."""
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": [{"name": name, "description": tool.description} for name, tool in TOOLS.items()
                          if refusal(plan, role, name) is None]}
    if method == "tools/call":
        return call_tool(params, plan, role)
    raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method[:80]!r}; expected ping, tools/list or tools/call")


def call_tool(params: Any, plan: Plan, role: Role) -> Result:
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        raise RpcError(INVALID_PARAMS, 'Invalid params: tools/call needs {"name": string, "arguments": object}')
    name = params["name"]
    if name not in TOOLS:
        raise RpcError(INVALID_PARAMS, f"Invalid params: unknown tool {name[:80]!r}; see tools/list")
    reason = refusal(plan, role, name)
    if reason is not None:
        raise RpcError(INVALID_PARAMS, f"Invalid params: your {reason} does not allow the tool {name!r}; see tools/list",
                       {"tool": name, "reason": reason})
    arguments = params.get("arguments", {})
    query = arguments.get("query") if isinstance(arguments, dict) else None
    if not isinstance(query, str) or not query.strip():
        raise RpcError(INVALID_PARAMS, f'Invalid params: {name} needs the argument "query" (a non-empty string)')
    return {"content": [{"type": "text", "text": TOOLS[name].run(query)}]}


def respond(text: str, run: Callable[[str, Any], Result]) -> str | None:
    """The reply to one frame (a request or a batch), or None when nothing is to be answered."""
    try:
        data = loads(text)
    except NotJsonText as exc:  # nested too deeply, or a lone surrogate
        return encode(_error(None, RpcError(PARSE_ERROR, f"Parse error: {exc}")))
    except ValueError:
        return encode(_error(None, RpcError(PARSE_ERROR, "Parse error: the frame is not valid JSON")))
    if isinstance(data, list):
        if not data:
            return encode(_error(None, RpcError(INVALID_REQUEST, "Invalid Request: empty batch")))
        replies = [reply for reply in (answer(item, run) for item in data) if reply is not None]
        return encode(replies) if replies else None
    reply = answer(data, run)
    return None if reply is None else encode(reply)


def answer(request: Any, run: Callable[[str, Any], Result]) -> dict[str, Any] | None:
    """The response to one request object; None for a notification (a request without an id)."""
    if (not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str)
            or not _valid_id(request.get("id"))):
        rid = request.get("id") if isinstance(request, dict) and _valid_id(request.get("id")) else None
        return _error(rid, RpcError(INVALID_REQUEST, 'Invalid Request: expected {"jsonrpc": "2.0", "method": string, '
                                                     '"params"?, "id"?}'))
    try:
        result = run(request["method"], request.get("params"))
    except RpcError as exc:
        return None if "id" not in request else _error(request["id"], exc)
    return None if "id" not in request else {"jsonrpc": "2.0", "id": request["id"], "result": result}


def is_ping(text: str) -> bool:
    """A lone ping request, which, like the envelope's ping, is not rate-limited."""
    try:
        data = loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("method") == "ping"


def _valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _error(request_id: Any, exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": exc.body()}


class McpConnection(Connection):
    """A /ws/mcp socket: no envelope, no fan-out; JSON-RPC in, JSON-RPC out."""

    async def on_text(self, text: str) -> None:
        run: Callable[[str, Any], Result] = functools.partial(call, plan=self.plan, role=self.role)
        try:
            if not is_ping(text) and (wait := await self.retry_after()):
                run = _refuse(RpcError(RATE_LIMITED, f"Rate limited: retry in {wait} s", {"retry_after_seconds": wait}))
        except fanout.UNAVAILABLE as exc:
            log.warning("connection %s: Redis is unavailable (%s)", self.id, type(exc).__name__)
            run = _refuse(RpcError(UNAVAILABLE, "The service is temporarily unavailable; try again"))
        reply = respond(text, run)
        if reply is not None:
            self.send_text(reply)

    async def on_binary(self) -> None:
        self.send_text(encode(_error(None, RpcError(PARSE_ERROR, "Parse error: expected a JSON text frame"))))


def _refuse(error: RpcError) -> Callable[[str, Any], Result]:
    """Every request in the frame answered with `error` (notifications still get nothing)."""
    def run(method: str, params: Any) -> Result:
        raise error
    return run
