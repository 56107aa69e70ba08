"""Every check of the connection contract can fail: each case plants one defect into the
reference backend itself (tests/planted/defective_backend.py, a monkeypatch applied before
the backend starts; the backend has no switch for it) and runs the scenarios that cover the
requirement against it. They must fail, in the step that checks the requirement and with a
message that says what went wrong, while the same scenarios pass against the same backend
started with `--defect none` (the control).

Each case starts its own instances (development mode, short timers; two of them for the
@instances.two scenario, a production one for @mode.production) on one embedded PostgreSQL
and Redis, runs `behave` against them and stops them. The selected cases run at once (see
Lab); `-k CONN-01` runs only those. A case whose scenario fails for the wrong reason is a
finding about the specification: it stays in, marked xfail(strict) with the finding, until
the step is fixed.
"""

from __future__ import annotations

import re
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import SpecRun, run_spec, start_planted_backends
from support.launcher import EmbeddedServices

AUTH_LIFETIME = "features/authentication/token_lifetime.feature"
DEV_LOGIN = "features/authentication/developer_login.feature"
OWN_IDENTITY = "features/isolation/own_identity.feature"
CONNECTIONS = "features/connections/limits_and_cleanup.feature"
ABUSE = "features/limits/abuse.feature"
FORMATS = "features/messages/formats.feature"
JSON_RPC = "features/messages/json_rpc.feature"
ENDPOINTS = "features/discovery/endpoints.feature"
PUBLISHED = "features/discovery/published_configuration.feature"

# What the embedded default gives its development instances: timers short enough that the
# time-based scenarios take seconds.
SHORT_TIMERS = {"HEARTBEAT_INTERVAL_SECONDS": "0.5", "HEARTBEAT_TIMEOUT_SECONDS": "1",
                "HANDSHAKE_TIMEOUT_SECONDS": "1", "ALLOWED_ORIGINS": "https://app.example.com"}
# How long a step waits for an expected frame: a missing frame fails the step after this.
EVENT_TIMEOUT_SECONDS = "2"
# Cases run at once; most of a case's time is spent waiting on timers and timeouts.
WORKERS = 4
SLOW_FEATURES = (CONNECTIONS, AUTH_LIFETIME)

# A check found unable to report its defect is kept as a case with its `finding` (xfail,
# strict) until the lead fixes the step, then the finding is dropped. None is open here.


@dataclass(frozen=True)
class Case:
    """One planted defect, and what the scenarios that cover its requirement must report.

    ``failures`` maps a scenario (a prefix of its name, as behave reports it) to the step that
    must fail and what its message must say: a str it contains, or a compiled regex found in it.
    """

    requirement: str
    defect: str
    feature: str
    names: str  # behave -n: selects the covering scenarios in the planted run and the control
    # Every scenario the selection runs against the defect must be here (and fail); a scenario
    # that is not here must pass (the check reports it as "also failed").
    failures: dict[str, tuple[str, str | re.Pattern[str]]] = field(default_factory=dict)
    mode: str = "development"
    instances: int = 1
    finding: str | None = None

    def __str__(self) -> str:
        return f"{self.requirement}-{self.defect}"


CASES = [
    Case("AUTH-05", "expiry-never-armed", AUTH_LIFETIME, "socket is closed soon after her token expires", {
        "Alice's socket is closed soon after her token expires": (
            'Alice\'s laptop is disconnected as "token expired" within 2 seconds of the expiry',
            "is still connected; expected to be disconnected with code 4001")}),
    Case("AUTH-06", "reauth-adopts-any-token", AUTH_LIFETIME, "token that is not the socket's own", {
        f"Renewing with a token that is not the socket's own is refused: the token of {device}": (
            'Alice\'s laptop is told "reauthentication_refused"', 'an error "reauthentication_refused"')
        for device in ("Bob's phone", "Alice's phone")}),
    Case("AUTH-07", "dev-login-in-production", DEV_LOGIN, "production service refuses the developer login", {
        "A production service refuses the developer login": ("the handshake is refused with HTTP 401", "was accepted")},
        mode="production"),
    Case("ISO-03", "path-user-unchecked", OWN_IDENTITY, "cannot open Bob's personal socket address", {
        f"A {plan} customer cannot open Bob's personal socket address": (
            "the handshake is refused with HTTP 403", "was accepted")
        for plan in ("Free", "Pro", "Enterprise")}),
    Case("ISO-06", "thread-owner-revealed", OWN_IDENTITY, "nor tell that it exists", {
        f"Alice cannot {action} Bob's thread, nor tell that it exists": (
            "Alice is told the thread does not exist, exactly as for a thread that never existed",
            "differs from the answer for a thread that never existed")
        for action in ("read", "write to", "subscribe to")}),
    Case("CONN-01", "limit-off-by-one", CONNECTIONS, "fourth device|many tabs|across the service's instances", {
        "Connecting a fourth device closes Alice's oldest socket": (
            'Alice\'s laptop is disconnected as "connection limit"', "expected to be disconnected with code 4008"),
        "Opening many tabs at the same moment still leaves exactly the limit open": (
            "exactly 3 of Alice's tabs stay connected", "4 of 6 tabs stay connected; expected exactly 3"),
        "The limit holds across the service's instances": (
            "exactly 3 of Alice's tabs stay connected", "4 of 6 tabs stay connected; expected exactly 3")},
        instances=2),
    Case("CONN-01", "eviction-ignored", CONNECTIONS, "fourth device|many tabs|across the service's instances", {
        "Connecting a fourth device closes Alice's oldest socket": (
            'Alice\'s laptop is disconnected as "connection limit"', "expected to be disconnected with code 4008"),
        "Opening many tabs at the same moment still leaves exactly the limit open": (
            "exactly 3 of Alice's tabs stay connected", "6 of 6 tabs stay connected; expected exactly 3"),
        "The limit holds across the service's instances": (
            "exactly 3 of Alice's tabs stay connected", "6 of 6 tabs stay connected; expected exactly 3")},
        instances=2),
    Case("CONN-02", "never-pings", CONNECTIONS, "stops answering its heartbeat", {
        "The service lets go of a device that stops answering its heartbeat": (
            "Alice's laptop received heartbeats at the advertised interval", "received no heartbeat")}),
    Case("CONN-02", "never-drops-silent-clients", CONNECTIONS, "stops answering its heartbeat", {
        "The service lets go of a device that stops answering its heartbeat": (
            "Alice's laptop was disconnected within the advertised heartbeat timeout", "advertised timeout 1 s")}),
    Case("CONN-03", "closed-sockets-counted", CONNECTIONS, "forgets a socket soon after it disconnects", {
        "The service forgets a socket soon after it disconnects": (
            "the service stops counting Alice's laptop's socket within 2 seconds", "open sockets after 2 s")}),
    Case("CONN-04", "no-handshake-timeout", CONNECTIONS, "never finishes its handshake", {
        f"A client that never finishes its handshake is dropped: {client}": (
            "the service drops it within the advertised handshake timeout",
            "the unfinished connection was still open; the service advertises a handshake timeout of 1 s")
        for client in ("silent", "half a request")}),
    Case("CONN-05", "connection-leak", CONNECTIONS, "thousand connects", {
        "A thousand connects and disconnects leave nothing behind": (
            "the service's memory has grown by less than 10 MB", "the service's memory grew by")}),
    Case("CONN-05", "closed-sockets-counted", CONNECTIONS, "thousand connects", {
        "A thousand connects and disconnects leave nothing behind": (
            "the service's open connection count is back where it started within 2 seconds",
            "open sockets after 2 s; expected at most 0 open sockets, as before")}),
    Case("MSG-01", "pong-without-id", FORMATS, "Replies carry the id", {
        "Replies carry the id of the message they answer": (
            'Alice\'s laptop receives a "pong" with the id "my-ping-1"', 'did not receive a "pong" with the id')}),
    Case("MSG-02", "unknown-method-invalid-request", JSON_RPC, "standard JSON-RPC error", {
        "A bad request gets the standard JSON-RPC error: unknown method": (
            "it receives the JSON-RPC error -32601", "expected a JSON-RPC 2.0 error -32601")}),
    Case("MSG-02", "notifications-answered", JSON_RPC, "notification", {
        "A batch is answered in one reply, and notifications are not answered": (
            "it receives one reply holding exactly the answers to the 2 calls", "the batch reply answers"),
        "A notification on its own gets no reply": (
            "the first reply it receives answers the ping", "the notification was answered")}),
    Case("MSG-03", "bad-json-closes", FORMATS, "socket stays usable: bad JSON", {
        "A malformed message gets a documented error and the socket stays usable: bad JSON": (
            # The close code, wherever the step puts it in its sentence.
            "Alice's laptop is still usable", re.compile(r"closed.{0,25}\b1003\b"))}),
    Case("MSG-04", "unknown-type-unnamed", FORMATS, "mistake is: unknown type", {
        "A message with a mistake is told what the mistake is: unknown type": (
            'Alice\'s laptop is told "unknown_type" naming "dance"', "the error does not name 'dance'")}),
    Case("MSG-05", "legacy-chat-untranslated", FORMATS, "older app's question", {
        "An older app's question is translated and answered": (
            "Alice receives the agent's full answer", "received the events error; expected agent_started")}),
    Case("LIM-01", "no-size-limit", ABUSE, "over the size limit", {
        "A message over the size limit is refused": (
            'Alice\'s laptop is disconnected as "message too big"', "expected to be disconnected with code 1009")}),
    Case("LIM-02", "rate-limit-off-by-one", ABUSE, "Past the message rate", {
        "Past the message rate, Alice is asked to wait, keeps her socket, and Bob is unaffected": (
            'Alice\'s last question is refused as "rate_limited" with a hint when to retry',
            'did not receive an error "rate_limited"')}),
    Case("LIM-02", "no-retry-after", ABUSE, "Past the message rate", {
        "Past the message rate, Alice is asked to wait, keeps her socket, and Bob is unaffected": (
            'Alice\'s last question is refused as "rate_limited" with a hint when to retry',
            "the refusal gives no usable retry-after hint")}),
    Case("LIM-03", "origin-startswith", ABUSE, "page on another site cannot open a socket", {
        "A page on another site cannot open a socket: look-alike address": (
            "the handshake is refused with HTTP 403", "was accepted")}),
    Case("ROUTE-01", "no-versioned-path", ENDPOINTS, "chats through", {
        "Alice chats through her versioned personal socket address": (
            "Alice connects from her laptop to her versioned personal socket address",
            "HandshakeRefused: handshake refused with HTTP 403")}),
    Case("ROUTE-02", "config-without-timeouts", PUBLISHED, "publishes its endpoint", {
        "The service publishes its endpoint, limits, timings and authentication methods": (
            "the configuration publishes these settings:", "the config document does not publish handshake timeout")}),
    Case("ROUTE-03", "secret-in-security-config", ENDPOINTS, "security settings are published", {
        "The security settings are published without any secret": (
            "they contain no secret", "the published document contains the signing secret")}),
]


@dataclass(frozen=True)
class Deployment:
    """Instances of one backend, all with the same defect, on the shared database and Redis."""

    defect: str
    mode: str
    instances: int


@dataclass
class Outcome:
    """One run of the specification against one deployment."""

    run: SpecRun
    logs: str
    seconds: float

    def statuses(self) -> dict[str, str]:
        """Scenario -> passed, failed or error, for every scenario the selection ran."""
        return {name: scenario.get("status", "?")
                for name, scenario in self.run.scenarios().items() if scenario.get("status") != "skipped"}


def control_key(case: Case) -> tuple[str, bool]:
    """Cases of one mode share a control run of all their scenarios; the slow features have their own."""
    # Split off so that the long control runs in parallel with the short one, not in series.
    return case.mode, case.feature in SLOW_FEATURES


class Lab:
    """Runs every selected case at once, each on backends of its own, and the controls beside them.

    A case's backends are started, used by one run of the specification and stopped within
    that case's job. A control runs the union of the scenarios of several cases against
    backends started with `--defect none` (see control_key). Run one after the other, the
    cases took 106 s; at once, under 50 s. Tests wait for their own case's outcome.
    """

    # The program that plants the defects (python -m <module> --defect NAME).
    defects_module = "tests.planted.defective_backend"

    def __init__(self, cases: list[Case], workdir: Path):
        # The slow features first, so that their long runs do not end up last in the queue.
        cases = sorted(cases, key=lambda case: case.feature not in SLOW_FEATURES)
        self.workdir = workdir
        self.embedded = EmbeddedServices()
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="planted-case")
        self.controls: dict[tuple[str, bool], Future[Outcome]] = {}
        self.planted: dict[str, Future[Outcome]] = {}
        try:
            # One PostgreSQL and one Redis for every deployment: each run signs its own users
            # with its own secret, so runs at once do not see each other's state.
            self.database_url, self.redis_url = self.embedded.start_postgres(), self.embedded.start_redis()
            for key in sorted({control_key(case) for case in cases}):
                group = [case for case in cases if control_key(case) == key]
                features = sorted({case.feature for case in group})
                names = [option for case in group for option in ("-n", case.names)]
                # As many instances as the most demanding case of the group needs.
                deployment = Deployment("none", group[0].mode, max(case.instances for case in group))
                self.controls[key] = self.pool.submit(self.run, f"control-{len(self.controls) + 1}", deployment,
                                                      *features, *names)
            for case in cases:
                deployment = Deployment(case.defect, case.mode, case.instances)
                self.planted[str(case)] = self.pool.submit(self.run, str(case), deployment, case.feature,
                                                           "-n", case.names)
        except BaseException:
            self.close()
            raise

    def run(self, label: str, deployment: Deployment, *spec_args: str) -> Outcome:
        """Start the deployment, run the specification against it, stop it."""
        started = time.monotonic()
        secret = secrets.token_urlsafe(32)
        environment = {**SHORT_TIMERS, "BACKEND_MODE": deployment.mode, "JWT_SECRET": secret,
                       "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}
        backends = start_planted_backends(self.embedded, {
            f"{label}-{n}": (deployment.defect, environment) for n in range(1, deployment.instances + 1)},
            module=self.defects_module)
        try:
            target = {"TARGET_URL": ",".join(backend.url for backend in backends), "JWT_SECRET": secret,
                      "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                      "SPEC_EVENT_TIMEOUT_SECONDS": EVENT_TIMEOUT_SECONDS}
            run = run_spec(*spec_args, env=target, tmp_path=self.workdir)
            logs = "\n".join(f"--- log of {backend.name}:\n{backend.log_tail(20)}" for backend in backends)
        finally:
            # Stopped here, failed run or not: the job owns its backends.
            for backend in backends:
                self.embedded.stop_backend(backend)
        return Outcome(run, logs, time.monotonic() - started)

    def close(self) -> None:
        # Cancel what has not started; wait for the running jobs, which stop their own backends;
        # then stop whatever is left (PostgreSQL, Redis, a backend a failed start left behind).
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.embedded.stop()


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    """Starts the cases this session selected (all, or those picked with -k), all at once."""
    cases = [item.callspec.params["case"] for item in request.session.items
             if item.module.__name__ == __name__ and "case" in getattr(item, "callspec", {}).params]
    lab = Lab(cases, tmp_path_factory.mktemp("planted-contract-defects"))
    yield lab
    lab.close()


PARAMS = [pytest.param(case, id=str(case),
                       marks=[pytest.mark.xfail(strict=True, reason=case.finding)] if case.finding else [])
          for case in CASES]


@pytest.mark.parametrize("case", PARAMS)
def test_a_planted_defect_fails_the_scenario_that_covers_it(case, lab):
    """The covering scenarios fail in the named step, saying what went wrong, and pass in the control."""
    control, planted = lab.controls[control_key(case)].result(), lab.planted[str(case)].result()

    # Which scenario each entry of case.failures names (exactly one of those that ran).
    chosen = {}
    for prefix in case.failures:
        matching = [name for name in planted.statuses() if name.startswith(prefix)]
        assert len(matching) == 1, f"no single scenario named {prefix!r} ran: {sorted(planted.statuses())}"
        chosen[matching[0]] = case.failures[prefix]

    # Without the defect, every scenario the selection ran passes: a failure below is the defect's.
    control_statuses = control.statuses()
    for scenario in planted.statuses():
        assert control_statuses.get(scenario) == "passed", (
            f"{scenario!r} did not pass against the unpatched backend (the control): {control_statuses.get(scenario)}\n"
            f"{control.run.output[-6000:]}\n{control.logs}")

    # The first failed step of each scenario is the one that counts; the rest follow from it.
    failed = {}
    for scenario, step, message in planted.run.failed_steps():
        failed.setdefault(scenario, (step, message))
    report = f"\nthe run ({planted.seconds:.1f} s) printed:\n{planted.run.output[-6000:]}\n{planted.logs}"
    missed = [scenario for scenario in chosen if scenario not in failed]
    assert not missed, f"the defect {case.defect!r} did not fail {missed}; outcome {planted.statuses()}{report}"
    unexpected = sorted(set(failed) - set(chosen))
    assert not unexpected, f"the defect {case.defect!r} also failed {unexpected}{report}"
    for scenario, (step, text) in chosen.items():
        failed_step, message = failed[scenario]
        assert failed_step == step, f"{scenario!r} failed in {failed_step!r}, not in {step!r}: {message}{report}"
        said = text.search(message) if isinstance(text, re.Pattern) else text in message
        assert said, f"{scenario!r} failed in {step!r} saying {message!r}; expected it to say {_shown(text)}"


def _shown(text: str | re.Pattern[str]) -> str:
    return f"a match for /{text.pattern}/" if isinstance(text, re.Pattern) else repr(text)
