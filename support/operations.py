"""The contract's operations, read from its documents, and which of them a run exercised under observation.

An *operation* is one request a client may make: each message type a client may send on the
envelope sockets (``/ws``, and the user paths that speak the same frames) and on the tools
socket (``/ws/mcp``), read from docs/asyncapi.yaml (the messages of every ``action: receive``
operation), and each HTTP endpoint, read from docs/openapi.yaml (every path and method). An
operation is named by the document's own key: the AsyncAPI component message (``threadRead``,
``rpcToolsCall``) or the OpenAPI ``operationId`` (``refresh``). Nothing here is a copy of the
documents: add a message or an endpoint there and it is an operation here.

For each operation the inventory says which resources it names (a thread, a run, a session,
a user), from the names of the fields it takes (``thread_id``, ``user_id``, a token, a
refresh token, a path parameter), and what it returns (the reply messages, or the HTTP
statuses with the schema of their body).

``IsolationCoverage`` is one run's record of the operations it performed while other people
and the same person's other devices were connected and listening (ISO-08): the steps note
an operation when they perform it under observation, the harness settles each note with the
scenario's outcome, and the run writes the table into its results (``isolation-coverage.json``)
for the release report. No behave here.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parent.parent / "docs"
ASYNCAPI = DOCS / "asyncapi.yaml"
OPENAPI = DOCS / "openapi.yaml"

THREAD, RUN, SESSION, USER = "thread", "run", "session", "user"
# A field's name -> the resource it names. A token names the session it is bound to.
RESOURCE_FIELDS = {"thread_id": THREAD, "run_id": RUN, "session_id": SESSION, "user_id": USER,
                   "token": SESSION, "refresh_token": SESSION}
RESOURCES = (THREAD, RUN, SESSION, USER)

ENVELOPE, TOOLS, HTTP = "/ws", "/ws/mcp", "HTTP"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Operation:
    """One request of the contract, as its document describes it."""

    id: str                  # the document's key: AsyncAPI message or OpenAPI operationId
    surface: str             # ENVELOPE, TOOLS or HTTP
    request: str             # what goes on the wire: "thread_read", "tools/call", "POST /auth/refresh"
    summary: str
    takes: tuple[tuple[str, str], ...]  # (field, resource) for every field naming a resource
    returns: tuple[str, ...]            # reply message names, or "200 TokenDocument"
    credential: str | None = None       # HTTP: "user", "operator" or None (public)

    @property
    def resources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(resource for _, resource in self.takes))

    def describe(self) -> str:
        taken = ", ".join(f"{name} ({resource})" for name, resource in self.takes) or "no resource id"
        return f"{self.id} [{self.surface} {self.request}]: takes {taken}; returns {', '.join(self.returns)}"


def _load(path: Path) -> dict:
    with open(path, encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_Loader)


def _pointer(document: dict, ref: str):
    node = document
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _deref(document: dict, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        node, seen = _pointer(document, node["$ref"]), seen + 1
    return node


def _resource_fields(document: dict, schema, depth: int = 0) -> list[tuple[str, str]]:
    """(field, resource) for the fields of ``schema`` (and of its nested objects) that name a resource."""
    schema = _deref(document, schema)
    if not isinstance(schema, dict) or depth > 4:
        return []
    found: list[tuple[str, str]] = []
    for name, value in (schema.get("properties") or {}).items():
        if name in RESOURCE_FIELDS:
            found.append((name, RESOURCE_FIELDS[name]))
        elif name not in ("type", "id", "jsonrpc", "method", "event", "request_id"):
            found.extend(_resource_fields(document, value, depth + 1))
    return found


def _asyncapi_operations(document: dict) -> list[Operation]:
    channels = document["channels"]
    component_of = {}  # "#/channels/chat/messages/threadRead" -> "threadRead"
    for channel_key, channel in channels.items():
        for message_key, message in (channel.get("messages") or {}).items():
            component_of[f"#/channels/{channel_key}/messages/{message_key}"] = message["$ref"].rsplit("/", 1)[-1]
    messages = document["components"]["messages"]
    found: dict[str, Operation] = {}
    for operation in document["operations"].values():
        if operation.get("action") != "receive":
            continue
        channel = _pointer(document, operation["channel"]["$ref"])
        surface = TOOLS if channel["address"] == TOOLS else ENVELOPE
        reply = operation.get("reply") or {}
        returns = tuple(dict.fromkeys(_message_name(messages[component_of[ref["$ref"]]])
                                      for ref in reply.get("messages", [])))
        for ref in operation.get("messages", []):
            key = component_of[ref["$ref"]]
            message = messages[key]
            takes = tuple(dict.fromkeys(_resource_fields(document, message.get("payload"))))
            found.setdefault(key, Operation(key, surface, _message_name(message),
                                            message.get("summary") or message.get("title") or operation.get("summary", ""),
                                            takes, returns))
        # A channel parameter (/ws/{user_id}) names a resource at the handshake, not in a message.
    return list(found.values())


def _message_name(message: dict) -> str:
    return str(message.get("name"))


def _openapi_operations(document: dict) -> list[Operation]:
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            takes: list[tuple[str, str]] = []
            for parameter in operation.get("parameters", []) + item.get("parameters", []):
                parameter = _deref(document, parameter)
                if parameter.get("name") in RESOURCE_FIELDS:
                    takes.append((parameter["name"], RESOURCE_FIELDS[parameter["name"]]))
            body = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json", {})
            takes.extend(_resource_fields(document, body.get("schema")))
            returns = []
            for status, response in (operation.get("responses") or {}).items():
                reference = response.get("$ref", "")
                response = _deref(document, response)
                schema = ((response.get("content") or {}).get("application/json") or {}).get("schema") or {}
                named = schema.get("$ref", reference).rsplit("/", 1)[-1]
                returns.append(f"{status} {named}".strip())
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            credential = ("operator" if schemes == {"operatorBearer"} else
                          "user" if "userBearer" in schemes else None)
            found.append(Operation(operation["operationId"], HTTP, f"{method.upper()} {path}",
                                   operation.get("summary", ""), tuple(dict.fromkeys(takes)), tuple(returns),
                                   credential))
    return found


@dataclass(frozen=True)
class Inventory:
    """Every operation of the contract, in the order the documents list them."""

    operations: tuple[Operation, ...]

    @classmethod
    def load(cls, asyncapi: Path = ASYNCAPI, openapi: Path = OPENAPI) -> "Inventory":
        """The inventory of the two documents, read once per process while neither file changes.

        The step vocabulary, the replayed requests and the isolation coverage each ask for it
        as they load; parsing the YAML three times cost every worker about 0.15 s of CPU at its start.
        """
        key = tuple((str(path), path.stat().st_mtime_ns, path.stat().st_size)
                    for path in (Path(asyncapi), Path(openapi)))
        if key not in _READ:
            _READ[key] = cls._read(Path(asyncapi), Path(openapi))
        return _READ[key]

    @classmethod
    def _read(cls, asyncapi: Path, openapi: Path) -> "Inventory":
        operations = _asyncapi_operations(_load(asyncapi)) + _openapi_operations(_load(openapi))
        ids = [operation.id for operation in operations]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"operations named twice across docs/asyncapi.yaml and docs/openapi.yaml: "
                             f"{', '.join(duplicates)}; every operation needs a name of its own")
        return cls(tuple(operations))

    def __iter__(self):
        return iter(self.operations)

    def __len__(self) -> int:
        return len(self.operations)

    def __contains__(self, operation_id: str) -> bool:
        return any(operation.id == operation_id for operation in self.operations)

    def __getitem__(self, operation_id: str) -> Operation:
        for operation in self.operations:
            if operation.id == operation_id:
                return operation
        raise KeyError(f"the contract has no operation {operation_id!r}; it has {', '.join(self.ids())}")

    def ids(self) -> list[str]:
        return [operation.id for operation in self.operations]

    def naming(self, *resources: str) -> list[Operation]:
        """The operations that take an id of one of ``resources``."""
        return [operation for operation in self.operations if set(operation.resources) & set(resources)]


# Inventory.load's answers: (path, mtime, size) of both documents -> the inventory (it is immutable).
_READ: dict[tuple, Inventory] = {}


# -- isolation coverage by operation (ISO-08) -----------------------------------------------

EXERCISED, FAILING, NOT_COVERED = "exercised", "failing", "not covered"
COVERAGE_FILE = "isolation-coverage.json"


@dataclass
class Observation:
    """One performance of an operation under observation: by whom, watched by whom, in which scenario."""

    operation: str
    performer: str
    watchers: tuple[str, ...]
    scenario: str
    outcome: str | None = None  # "passed" or "failed", once the scenario ended


@dataclass
class IsolationCoverage:
    """Which operations the run performed with other people and the performer's other devices listening."""

    inventory: Inventory
    observations: list[Observation] = field(default_factory=list)
    _open: list[Observation] = field(default_factory=list)

    def observed(self, operation: str, performer, watchers, scenario: str) -> None:
        """Note ``operation``, performed by ``performer`` while every party of ``watchers`` listened.

        Refused unless the watchers include another user and another device of the performer's:
        the note is what the report calls covered, so it must mean what ISO-08 says.
        """
        if operation not in self.inventory:
            raise AssertionError(f"{operation!r} is no operation of the contract (docs/asyncapi.yaml, "
                                 f"docs/openapi.yaml); it has {', '.join(self.inventory.ids())}")
        others = [w for w in watchers if w.user_id != performer.user_id]
        own = [w for w in watchers if w.user_id == performer.user_id and w.session_id != performer.session_id]
        if not others or not own:
            missing = "nobody else" if not others else f"none of {performer.user_name}'s other devices"
            raise AssertionError(f"{operation} by {performer} is not under observation: {missing} is connected "
                                 f"and listening; connect them first")
        note = Observation(operation, str(performer), tuple(sorted(str(w) for w in watchers)), scenario)
        self._open.append(note)

    def settle(self, passed: bool) -> None:
        """The scenario that made the open notes has ended; keep them with its outcome."""
        for note in self._open:
            note.outcome = "passed" if passed else "failed"
        self.observations.extend(self._open)
        self._open = []

    def rows(self) -> list[dict]:
        rows = []
        for operation in self.inventory:
            notes = [n for n in self.observations if n.operation == operation.id]
            status = (FAILING if any(n.outcome == "failed" for n in notes) else
                      EXERCISED if notes else NOT_COVERED)
            rows.append({"operation": operation.id, "surface": operation.surface, "request": operation.request,
                         "takes": [f"{name} ({resource})" for name, resource in operation.takes],
                         "status": status, "scenarios": sorted({n.scenario for n in notes}),
                         "watched_by": sorted({w for n in notes for w in n.watchers})})
        return rows

    def summary(self) -> str:
        rows = self.rows()
        counts = {status: sum(row["status"] == status for row in rows) for status in (EXERCISED, FAILING, NOT_COVERED)}
        return (f"{counts[EXERCISED]} of {len(rows)} operations exercised under observation, "
                f"{counts[FAILING]} failing, {counts[NOT_COVERED]} not covered")

    def write(self, directory: Path) -> Path:
        """``isolation-coverage.json`` in the run's results, for the release report."""
        path = Path(directory) / COVERAGE_FILE
        path.write_text(json.dumps({"summary": self.summary(), "operations": self.rows()}, indent=1),
                        encoding="utf-8")
        return path


def coverage_rows(results: Path, inventory: Inventory | None = None) -> tuple[str, list[dict]]:
    """The isolation coverage a run wrote into ``results``; without it, every operation not covered."""
    inventory = inventory or Inventory.load()
    path = Path(results) / COVERAGE_FILE
    written = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"operations": []}
    by_id = {row["operation"]: row for row in written.get("operations", [])}
    rows = []
    for operation in inventory:  # the inventory of the documents now: a new operation shows as not covered
        row = by_id.get(operation.id) or {"operation": operation.id, "surface": operation.surface,
                                          "request": operation.request, "takes": [], "status": NOT_COVERED,
                                          "scenarios": [], "watched_by": []}
        rows.append(row)
    exercised = sum(row["status"] == EXERCISED for row in rows)
    return f"{exercised} of {len(rows)} operations exercised under observation", rows


def coverage_html(summary: str, rows: list[dict]) -> str:
    """The isolation coverage table as a page of its own (beside requirement-coverage.html)."""
    order = {FAILING: 0, NOT_COVERED: 1, EXERCISED: 2}
    lines = ["<!doctype html><meta charset='utf-8'><title>Isolation coverage by operation</title>",
             "<h1>Isolation coverage by operation (ISO-08)</h1>", f"<p>{html.escape(summary)}</p>",
             "<table border='1' cellpadding='4'><tr><th>Status</th><th>Operation</th><th>Request</th>"
             "<th>Names</th><th>Scenarios</th><th>Watched by</th></tr>"]
    for row in sorted(rows, key=lambda r: order.get(r["status"], 3)):
        lines.append("<tr id='{0}'><td>{1}</td><td>{0}</td><td>{2} {3}</td><td>{4}</td><td>{5}</td><td>{6}</td></tr>".format(
            html.escape(row["operation"]), html.escape(row["status"]), html.escape(row["surface"]),
            html.escape(row["request"]), html.escape(", ".join(row["takes"]) or "-"),
            html.escape("; ".join(row["scenarios"]) or "-"), html.escape(", ".join(row["watched_by"]) or "-")))
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def coverage_csv(rows: list[dict]) -> str:
    lines = ["Status,Operation,Request,Scenarios"]
    for row in rows:
        cells = [row["status"], row["operation"], f"{row['surface']} {row['request']}", "; ".join(row["scenarios"])]
        lines.append(",".join('"' + cell.replace('"', '""') + '"' for cell in cells))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    inventory = Inventory.load()
    for operation in inventory:
        print(operation.describe())
    print(f"{len(inventory)} operations")
