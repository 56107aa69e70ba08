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

A case names what it runs and what must fail as the features and steps name them, never by
a title or a sentence: its scenarios by requirement tag (@req.CONN-01, with another tag
expression where two cases share a requirement), an outline's example by cells of its
Examples row, and the failing step by its step function (steps/*.py). A product owner may
reword any scenario or step without breaking a case.
"""

from __future__ import annotations

import re
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import FailedCheck, Scenario, SpecRun, is_check, run_spec, start_planted_backends
from support.launcher import EmbeddedServices

AUTH_LIFETIME = "features/authentication/token_lifetime.feature"
DEV_LOGIN = "features/authentication/developer_login.feature"
OWN_IDENTITY = "features/isolation/own_identity.feature"
CONNECTIONS = "features/connections/limits_and_cleanup.feature"
ABUSE = "features/limits/abuse.feature"
FORMATS = "features/messages/formats.feature"
JSON_RPC = "features/messages/json_rpc.feature"
ENDPOINTS = "features/discovery/endpoints.feature"
PLANS = "features/plans/plans_and_permissions.feature"
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
class Fails:
    """A scenario the defect must fail, named by what it checks rather than by its words.

    ``check`` is the step function (steps/*.py) of the first step to fail, bare or as
    module.function; ``says`` is what its message must say: a str it contains, or a compiled
    regex found in it. ``row`` names an outline's example by cells of its Examples row (usually
    the first, which names the row); without a row, the scenario is a plain Scenario of the
    requirement that runs that check. ``tags`` are tags the scenario must have besides.
    """

    check: str
    says: str | re.Pattern[str]
    row: tuple[str, ...] | str | None = None
    tags: tuple[str, ...] | str = ()

    def __post_init__(self):
        if isinstance(self.row, str):
            object.__setattr__(self, "row", (self.row,))
        if isinstance(self.tags, str):
            object.__setattr__(self, "tags", (self.tags,))

    def names(self, failed: FailedCheck) -> bool:
        """Whether the failure is in the scenario this names, in its check (whatever it said)."""
        in_row = failed.row is None if self.row is None else failed.scenario.holds(*self.row)
        tagged = all(tag in failed.scenario.tags for tag in self.tags)
        return in_row and tagged and is_check(failed.check, self.check)

    def said_by(self, message: str) -> bool:
        return bool(self.says.search(message)) if isinstance(self.says, re.Pattern) else self.says in message

    def __str__(self) -> str:
        return (self.check + (f" in the example {' | '.join(self.row)}" if self.row else "")
                + "".join(f" @{tag}" for tag in self.tags))


@dataclass(frozen=True)
class Case:
    """One planted defect, and what the scenarios that cover its requirement must report.

    The case runs every scenario of its feature tagged with its requirement (req.ID), narrowed
    by ``tags`` (a behave tag expression) where a scenario of the requirement belongs to
    another case. Each entry of ``failures`` is one scenario that must fail, in the step it
    names and saying what it names; every other scenario the selection runs must pass.
    """

    requirement: str
    defect: str
    feature: str
    failures: list[Fails] = field(default_factory=list)
    tags: str | None = None
    mode: str = "development"
    instances: int = 1
    finding: str | None = None

    @property
    def selection(self) -> str:
        """The tag expression that selects the case's scenarios (behave --tags)."""
        requirement = f"req.{self.requirement}"
        return f"{requirement} and ({self.tags})" if self.tags else requirement

    def __str__(self) -> str:
        return f"{self.requirement}-{self.defect}"


CASES = [
    Case("AUTH-05", "expiry-never-armed", AUTH_LIFETIME, [
        Fails("disconnected_after_expiry", "is still connected; expected to be disconnected with code 4001")]),
    Case("AUTH-06", "reauth-adopts-any-token", AUTH_LIFETIME, [
        Fails("told", 'an error "reauthentication_refused"', row=token)
        for token in ("the token of Bob's phone", "the token of Alice's phone")]),
    Case("AUTH-07", "dev-login-in-production", DEV_LOGIN, [
        Fails("handshake_refused", "was accepted")],
        mode="production"),
    Case("ISO-03", "path-user-unchecked", OWN_IDENTITY, [
        Fails("handshake_refused", "was accepted", row=plan) for plan in ("Free", "Pro", "Enterprise")]),
    Case("ISO-06", "thread-owner-revealed", OWN_IDENTITY, [
        Fails("told_not_found", "differs from the answer for a thread that never existed", row=action)
        for action in ("read", "write to", "subscribe to")]),
    Case("CONN-01", "limit-off-by-one", CONNECTIONS, [
        Fails("disconnected_as", "expected to be disconnected with code 4008"),
        # The tabs opened at once on one instance, and those spread over two.
        Fails("tabs_stay_connected", "4 of 6 tabs stay connected; expected exactly 3"),
        Fails("tabs_stay_connected", "4 of 6 tabs stay connected; expected exactly 3", tags="instances.two")],
        instances=2),
    Case("CONN-01", "eviction-ignored", CONNECTIONS, [
        Fails("disconnected_as", "expected to be disconnected with code 4008"),
        Fails("tabs_stay_connected", "6 of 6 tabs stay connected; expected exactly 3"),
        Fails("tabs_stay_connected", "6 of 6 tabs stay connected; expected exactly 3", tags="instances.two")],
        instances=2),
    Case("CONN-02", "never-pings", CONNECTIONS, [
        Fails("heartbeats_at_interval", "received no heartbeat")]),
    Case("CONN-02", "never-drops-silent-clients", CONNECTIONS, [
        Fails("disconnected_after_timeout", "advertised timeout 1 s")]),
    Case("CONN-03", "closed-sockets-counted", CONNECTIONS, [
        Fails("stops_counting", "open sockets after 2 s")]),
    Case("CONN-04", "no-handshake-timeout", CONNECTIONS, [
        Fails("dropped_in_time",
              "the unfinished connection was still open; the service advertises a handshake timeout of 1 s", row=client)
        for client in ("silent", "half a request")]),
    Case("CONN-05", "connection-leak", CONNECTIONS, [
        Fails("memory_growth", "the service's memory grew by")]),
    Case("CONN-05", "closed-sockets-counted", CONNECTIONS, [
        Fails("count_back", "open sockets after 2 s; expected at most 0 open sockets, as before")]),
    Case("MSG-01", "pong-without-id", FORMATS, [
        Fails("receives_reply", 'did not receive a "pong" with the id')]),
    Case("MSG-02", "unknown-method-invalid-request", JSON_RPC, [
        Fails("receives_rpc_error", "expected a JSON-RPC 2.0 error -32601", row="unknown method")]),
    Case("MSG-02", "notifications-answered", JSON_RPC, [
        Fails("batch_answered", "the batch reply answers"),
        Fails("first_reply_is_ping", "the notification was answered")]),
    Case("MSG-03", "bad-json-closes", FORMATS, [
        # The close code, wherever the step puts it in its sentence.
        Fails("still_usable", re.compile(r"closed.{0,25}\b1003\b"), row="bad JSON")]),
    Case("MSG-04", "unknown-type-unnamed", FORMATS, [
        Fails("told_naming", "the error does not name 'dance'", row="unknown type")]),
    Case("MSG-05", "legacy-chat-untranslated", FORMATS, [
        Fails("full_answer", "received the events error; expected agent_started")]),
    Case("LIM-01", "no-size-limit", ABUSE, [
        Fails("disconnected_as", "expected to be disconnected with code 1009")]),
    # Both scenarios of the rate: from one device, and counted across two. A Pro customer's
    # higher rate is LIM-04's (tests/test_planted_lifecycle_defects.py).
    Case("LIM-02", "rate-limit-off-by-one", ABUSE, [
        Fails("refused_past_limit", "0 of Alice's 31 questions (30 left of a limit of 30) were refused"),
        Fails("refused_past_limit", "1 of Alice's 32 questions (30 left of a limit of 30) were refused")],
        tags="not req.LIM-04"),
    # A second device must not bring a fresh allowance (issue 13): only the scenario spreading
    # the questions over two devices notices.
    Case("LIM-02", "rate-limit-per-socket", ABUSE, [
        Fails("refused_past_limit", "0 of Alice's 32 questions (30 left of a limit of 30) were refused")],
        tags="not req.LIM-04"),
    Case("LIM-02", "no-retry-after", ABUSE, [
        Fails("refused_past_limit", re.compile(r"the refusal of question \d+ gives no usable retry-after hint")),
        Fails("refused_past_limit", re.compile(r"the refusal of question \d+ gives no usable retry-after hint"))],
        tags="not req.LIM-04"),
    # Every origin that starts with the allowed one, and only those.
    Case("LIM-03", "origin-startswith", ABUSE, [
        Fails("handshake_refused", "was accepted", row=origin)
        for origin in ("look-alike address", "another port", "with a path")]),
    Case("ROUTE-01", "no-versioned-path", ENDPOINTS, [
        Fails("connects_to_address", "HandshakeRefused: handshake refused with HTTP 403",
              row="her versioned personal socket address")]),
    Case("ROUTE-02", "config-without-timeouts", PUBLISHED, [
        Fails("publishes_settings", "the config document does not publish handshake timeout")]),
    Case("ROUTE-03", "secret-in-security-config", ENDPOINTS, [
        Fails("no_secret", "the published document contains the signing secret")]),
    # Entitlements and health details are the operator's in production (issue 12, items 7-8).
    Case("ROUTE-04", "self-service-plan-in-production", PLANS, [
        Fails("refused_over_http", "was answered HTTP 200 {\"plan\":\"enterprise\"}; expected 403 operator_required")],
        mode="production"),
    Case("ROUTE-04", "health-details-public", PLANS, [
        Fails("refused_over_http", "was answered HTTP 200")], mode="production"),
    # The same secret in another spelling: base64url in a JWK's k (issue 13).
    Case("ROUTE-03", "secret-as-jwk", ENDPOINTS, [
        Fails("no_secret", re.compile(r"contains the signing secret \(base64|symmetric JSON Web Key"))]),
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
        """Scenario (by its location in the features) -> passed, failed or error, for every
        scenario the selection ran."""
        return {scenario.location: scenario.status for scenario in self.run.ran()}


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
                selection = " or ".join(sorted({f"({case.selection})" for case in group}))
                # As many instances as the most demanding case of the group needs.
                deployment = Deployment("none", group[0].mode, max(case.instances for case in group))
                self.controls[key] = self.pool.submit(self.run, f"control-{len(self.controls) + 1}", deployment,
                                                      *features, "--tags", selection)
            for case in cases:
                deployment = Deployment(case.defect, case.mode, case.instances)
                self.planted[str(case)] = self.pool.submit(self.run, str(case), deployment, case.feature,
                                                           "--tags", case.selection)
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
    """The covering scenarios fail in the named check, saying what went wrong, and pass in the control."""
    control, planted = lab.controls[control_key(case)].result(), lab.planted[str(case)].result()
    report = f"\nthe run ({planted.seconds:.1f} s) printed:\n{planted.run.output[-6000:]}\n{planted.logs}"
    ran = planted.run.ran()
    assert ran, f"no scenario of {case.selection} ran in {case.feature}{report}"

    # Every entry of case.failures names a scenario that ran: its example, or one that runs its check.
    for expected in case.failures:
        if expected.row is not None:
            planted.run.scenario_by_row(case.requirement, *expected.row)
        else:
            assert any(scenario.row is None and scenario.has_check(expected.check)
                       and all(tag in scenario.tags for tag in expected.tags) for scenario in ran), (
                f"no scenario of {case.requirement} without examples that runs {expected} ran: "
                f"{[_described(scenario) for scenario in ran]}")

    # Without the defect, every scenario the selection ran passes: a failure below is the defect's.
    control_statuses = control.statuses()
    for scenario in ran:
        assert control_statuses.get(scenario.location) == "passed", (
            f"{_described(scenario)} did not pass against the unpatched backend (the control): "
            f"{control_statuses.get(scenario.location)}\n{control.run.output[-6000:]}\n{control.logs}")

    # The first failed step of each scenario is the one that counts; the rest follow from it.
    first: dict[str, FailedCheck] = {}
    for failed in planted.run.failed_checks():
        first.setdefault(failed.scenario.location, failed)
    failures = list(first.values())
    claimed = _claim(case.failures, failures)
    if claimed is None:
        _explain_unmatched(case, failures, ran, report)
    unclaimed = [failed for failed in failures if failed not in claimed]
    assert not unclaimed, f"the defect {case.defect!r} also failed {[_failure(f) for f in unclaimed]}{report}"


def _claim(expected: list[Fails], failures: list[FailedCheck]) -> list[FailedCheck] | None:
    """One failure for each entry, in its scenario and check and saying what it says; None if
    there is no such choice (entries alike but for their messages are tried in every order)."""
    if not expected:
        return []
    head, *rest = expected
    for index, failed in enumerate(failures):
        if head.names(failed) and head.said_by(failed.message):
            others = _claim(rest, failures[:index] + failures[index + 1:])
            if others is not None:
                return [failed, *others]
    return None


def _explain_unmatched(case: Case, failures: list[FailedCheck], ran: list[Scenario], report: str) -> None:
    """Raise for the first entry of case.failures that no failure answers: the wrong message, or none."""
    unclaimed = list(failures)
    for expected in case.failures:
        named = [failed for failed in unclaimed if expected.names(failed)]
        said = [failed for failed in named if expected.said_by(failed.message)]
        if said:
            unclaimed.remove(said[0])
            continue
        assert not named, (f"{_described(named[0].scenario)} failed in {named[0].check} saying "
                           f"{named[0].message!r}; expected it to say {_shown(expected.says)}")
        raise AssertionError(
            f"the defect {case.defect!r} did not fail a scenario of {case.requirement} in {expected}; "
            f"the failures: {[_failure(failed) for failed in failures]}; outcome "
            f"{[(_described(scenario), scenario.status) for scenario in ran]}{report}")
    raise AssertionError(f"no one-to-one match of {[str(e) for e in case.failures]} to the failures "
                         f"{[_failure(failed) for failed in failures]}{report}")


def _described(scenario: Scenario) -> str:
    example = f", example {' | '.join(scenario.row)}" if scenario.row is not None else ""
    return f"{'/'.join(scenario.requirements)}{example} ({scenario.location}: {scenario.name.strip()!r})"


def _failure(failed: FailedCheck) -> str:
    return f"{_described(failed.scenario)} in {failed.check}: {failed.message[:300]!r}"


def _shown(text: str | re.Pattern[str]) -> str:
    return f"a match for /{text.pattern}/" if isinstance(text, re.Pattern) else repr(text)
