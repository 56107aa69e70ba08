"""The load profile on Locust: the contract, the self-describing markers and the leak check
inside every simulated user, on as many machines as it takes.

Each simulated person signs up over HTTP on a laptop and signs in on a phone, opens ``/ws``
from both with the bearer token, and asks private questions from one device or the other,
each carrying a marker from support/leaks.py that names its owner's user and session. Every
frame on every socket goes through the worker's LeakDetector as it arrives. A marker names
its owner and carries an HMAC under LEAK_MARKER_KEY, so a worker tells a leak from another
worker's person without any shared registry; identities (user ids, session ids, e-mail
addresses) are checked among the people of the same worker.

What it reports, to Locust's statistics (aggregated on the master):
- ``WS chat answer``: from sending a question to its ``agent_completed``; a failure if the
  answer is an error, does not come within --answer-timeout, or the socket closes;
- ``LEAK isolation``: one failure per frame that reached a socket it must not reach, saying on
  which worker, with the receiver, the owner and the frame (the frame for the first few only:
  a leak among 1,000 people is thousands of frames).

The master also prints each worker's frames checked and leaks seen, and the leaks first among
the errors.

The run ends non-zero (``environment.process_exit_code``) on any leak, on any failed answer,
or when the 99th percentile of the answers misses bench/thresholds.toml [locust] (or
--answer-p99-ms); the master (or a local run) writes bench/results/locust.json.

    export LEAK_MARKER_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')  # same everywhere
    locust -f bench/locustfile.py --headless --master --expect-workers 2 -u 1000 -r 50 -t 2m --host URL
    locust -f bench/locustfile.py --worker --master-host MASTER    # on each worker machine
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import gevent
import gevent.lock
import websocket  # websocket-client: blocking sockets that gevent makes cooperative
from gevent.event import AsyncResult
from locust import HttpUser, events, task
from locust.runners import MasterRunner, WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: support/ is the harness

from bench.load import raise_file_limit  # noqa: E402
from support.benchmarks import check_at_least, check_at_most, thresholds, write_result  # noqa: E402
from support.leaks import SESSION, LeakDetector, Party  # noqa: E402

DETECTOR = LeakDetector()  # one per worker process; every user of the worker reports to it
LEAKS_SEEN = 0
PEOPLE_HERE: set[str] = set()  # the user ids of this worker's people
# Each leak is a failure of its own, but only the first few carry their frame (of a person of
# this worker's, and of one whose marker says they are another worker's): a leak at 1,000
# people can be thousands of frames, and Locust keeps and prints every distinct message.
LEAKS_SHOWN = 5
_LEAKS_SHOWN_BY_OWNER = {True: 0, False: 0}  # owner among PEOPLE_HERE -> frames shown
WORKER_FIGURES: dict[str, dict] = {}  # on the master: what each worker last reported
DEVICES = {"laptop": "laptop_browser", "phone": "mobile_browser"}
_TARGET: dict = {}  # the config document's origin and socket path, read once per process
_TARGET_READ = gevent.lock.Semaphore()  # by the first person; those arriving meanwhile wait for it


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    limits = thresholds("locust")
    parser.add_argument("--answer-p99-ms", type=float, default=limits["answer_p99_ms_max"],
                        help="the run fails when the 99th percentile answer takes longer (milliseconds)")
    parser.add_argument("--answer-timeout", type=float, default=10.0,
                        help="seconds to wait for one answer before counting it failed")
    parser.add_argument("--plan", default="pro", help="the plan each simulated person signs up on")
    parser.add_argument("--ask-interval", type=float, default=12.0,
                        help="mean seconds between one person's questions (default 12: 5 a minute, the profile's)")


@events.init.add_listener
def _require_a_shared_key(environment, **_) -> None:
    raise_file_limit()  # three descriptors a person (two sockets, one HTTP connection); Locust asks for 10,000 only
    distributed = isinstance(environment.runner, (MasterRunner, WorkerRunner))
    if distributed and not os.environ.get("LEAK_MARKER_KEY"):
        sys.exit("LEAK_MARKER_KEY must be set, to the same hex key on the master and every worker: "
                 "a worker decides whose a marker is with it")


class ChatUser(HttpUser):
    """One person with a laptop and a phone, asking private questions."""

    def wait_time(self) -> float:
        # Spread around the mean, so that people who started together do not ask in lockstep.
        return self.environment.parsed_options.ask_interval * random.uniform(0.5, 1.5)

    def on_start(self) -> None:
        self.sockets: dict[str, websocket.WebSocket] = {}
        self.readers: list[gevent.Greenlet] = []
        self.waiting: dict[str, AsyncResult] = {}
        self.asked = 0
        target = _target(self)
        email, password = f"locust.{os.urandom(6).hex()}@example.test", os.urandom(12).hex()
        laptop = self._tokens("/auth/register", {"email": email, "password": password, "display_name": "Locust",
                                                 "plan": self.environment.parsed_options.plan,
                                                 "device_type": DEVICES["laptop"]}, 201)
        phone = self._tokens("/auth/login", {"email": email, "password": password,
                                             "device_type": DEVICES["phone"]}, 200)
        user = Party(f"person {email.split('@')[0]}", laptop["user_id"])
        DETECTOR.own(user, laptop["user_id"], "user id")
        PEOPLE_HERE.add(laptop["user_id"])
        DETECTOR.own(user, email, "e-mail address")
        self.parties = {}
        for device, tokens in (("laptop", laptop), ("phone", phone)):
            DETECTOR.own(user, tokens["session_id"], f"session id ({device})")
            party = Party(user.user_name, tokens["user_id"], tokens["session_id"], device)
            self.parties[device] = party
            started = time.perf_counter()
            try:
                socket = websocket.create_connection(
                    target["socket_url"], header=[f"Authorization: Bearer {tokens['access_token']}"],
                    origin=target["origin"], suppress_origin=target["origin"] is None,
                    timeout=self.environment.parsed_options.answer_timeout)
                text = socket.recv()
                self._check(party, text)
                welcome = json.loads(text)
                if welcome.get("type") != "connected":
                    raise RuntimeError(f"expected the welcome frame, received {welcome}")
            except Exception as error:
                _fire(self, "WS", "connect", started, exception=error)
                raise
            _fire(self, "WS", "connect", started)
            socket.settimeout(None)
            self.sockets[device] = socket
            self.readers.append(gevent.spawn(self._read, party, socket))

    def _tokens(self, path: str, body: dict, expected: int) -> dict:
        with self.client.post(path, json=body, catch_response=True) as answer:
            if answer.status_code != expected:
                answer.failure(f"HTTP {answer.status_code}: {answer.text[:200]}")
                raise RuntimeError(f"{path} answered HTTP {answer.status_code}")
            return answer.json()

    def _check(self, party: Party, text: str) -> None:
        """The leak check of one received frame; each violation is a failure of ``LEAK isolation``."""
        global LEAKS_SEEN
        for violation in DETECTOR.inspect(party, text):
            LEAKS_SEEN += 1
            where, owner_here = _process_name(self.environment), violation.owner.user_id in PEOPLE_HERE
            _LEAKS_SHOWN_BY_OWNER[owner_here] += 1
            said = (f"leak seen on {where}: {str(violation)[:1000]}"
                    if _LEAKS_SHOWN_BY_OWNER[owner_here] <= LEAKS_SHOWN else
                    f"leak seen on {where}: more frames reached sockets they must not reach (each counted; "
                    f"the first {LEAKS_SHOWN} of a person here and of one elsewhere are shown)")
            self.environment.events.request.fire(
                request_type="LEAK", name="isolation", response_time=0, response_length=len(text),
                exception=AssertionError(said), context={})

    def _read(self, party: Party, socket: websocket.WebSocket) -> None:
        try:
            while True:
                text = socket.recv()
                if not text:
                    break
                self._check(party, text)
                message = json.loads(text)
                waiting = self.waiting.get(message.get("id"))
                if waiting is not None and message.get("type") in ("agent_completed", "error"):
                    waiting.set(message)
        except (websocket.WebSocketException, OSError, ValueError):
            pass
        for waiting in list(self.waiting.values()):
            waiting.set({"type": "closed"})

    @task
    def ask(self) -> None:
        device = "laptop" if self.asked % 2 == 0 else "phone"
        self.asked += 1
        marker = DETECTOR.private_marker(self.parties[device], SESSION)
        request_id = f"locust-{marker[-12:]}"
        waiting = self.waiting[request_id] = AsyncResult()
        started = time.perf_counter()
        try:
            self.sockets[device].send(json.dumps({"type": "chat", "id": request_id,
                                                  "payload": {"text": f"What is my balance? (ref {marker})"}}))
            answer = waiting.get(timeout=self.environment.parsed_options.answer_timeout)
            if answer.get("type") != "agent_completed":
                raise RuntimeError(f"the answer was {json.dumps(answer)[:200]}")
            _fire(self, "WS", "chat answer", started)
        except gevent.Timeout:
            _fire(self, "WS", "chat answer", started, exception=TimeoutError("no agent_completed in time"))
        except Exception as error:
            _fire(self, "WS", "chat answer", started, exception=error)
        finally:
            self.waiting.pop(request_id, None)

    def on_stop(self) -> None:
        for socket in self.sockets.values():
            try:
                socket.close()
            except Exception:
                pass
        gevent.joinall(self.readers, timeout=2)


def _target(user: ChatUser) -> dict:
    with _TARGET_READ:
        if not _TARGET:
            config = user.client.get("/ws/config", name="/ws/config").json()
            # The origin a browser of the product's own web app sends (docs/contract.md, section 10).
            with user.client.get("/ws/secure/config", name="/ws/secure/config", catch_response=True) as answer:
                security = answer.json() if answer.status_code == 200 else {}
                answer.success()  # a target without the security document is no failure
            allowed = security.get("allowed_origins") or []
            base = user.host.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1)
            _TARGET.update(socket_url=base + (config.get("endpoints") or {}).get("websocket", "/ws"),
                           origin=allowed[0] if allowed else None)
    return _TARGET


def _process_name(environment) -> str:
    runner = environment.runner
    return f"worker {runner.client_id}" if isinstance(runner, WorkerRunner) else "the local runner"


def _fire(user: ChatUser, kind: str, name: str, started: float, exception: Exception | None = None) -> None:
    user.environment.events.request.fire(request_type=kind, name=name, response_length=0, exception=exception,
                                         response_time=(time.perf_counter() - started) * 1000, context={})


@events.report_to_master.add_listener
def _report_figures(client_id, data, **_) -> None:
    data["profile"] = {"frames_checked": DETECTOR.frames_inspected, "leaks": LEAKS_SEEN,
                       "forged_markers": DETECTOR.forged_markers}


@events.worker_report.add_listener
def _collect_figures(client_id, data, **_) -> None:
    if "profile" in data:
        WORKER_FIGURES[client_id] = data["profile"]  # running totals: the last report counts


@events.quitting.add_listener
def _judge(environment, **_) -> None:
    """Fail the run on a leak, a failed answer or a missed latency threshold; write the result."""
    if isinstance(environment.runner, WorkerRunner):
        if LEAKS_SEEN:
            environment.process_exit_code = 1
        return
    stats = environment.stats
    answers, leaks = stats.get("chat answer", "WS"), stats.get("isolation", "LEAK")
    p99 = answers.get_response_time_percentile(0.99) if answers.num_requests else float("inf")
    limit = environment.parsed_options.answer_p99_ms
    checks = [check_at_most("leaks seen on any worker", leaks.num_failures, thresholds("locust")["leaks_max"]),
              check_at_least("answers received", answers.num_requests - answers.num_failures, 1),
              check_at_most("answers failed", answers.num_failures, 0),
              check_at_most("answer p99 (ms)", p99, limit)]
    measured = {"users": environment.parsed_options.num_users,
                "answers": answers.num_requests, "answers_failed": answers.num_failures,
                "answer_median_ms": answers.get_response_time_percentile(0.5) if answers.num_requests else None,
                "answer_p99_ms": p99 if answers.num_requests else None,
                "leaks": leaks.num_failures}
    if isinstance(environment.runner, MasterRunner):
        figures = list(WORKER_FIGURES.values())
        measured["workers"] = len(figures)
    else:
        figures = [{"frames_checked": DETECTOR.frames_inspected, "leaks": LEAKS_SEEN,
                    "forged_markers": DETECTOR.forged_markers}]
        measured["workers"] = 0
    for name in ("frames_checked", "forged_markers"):
        measured[name] = sum(f.get(name, 0) for f in figures)
    measured["leaks"] = max(measured["leaks"], sum(f.get("leaks", 0) for f in figures))
    for check in checks:
        print(f"[locust profile] {check}", flush=True)
    for client_id, worker in sorted(WORKER_FIGURES.items()):
        print(f"[locust profile] worker {client_id}: {worker.get('frames_checked', 0)} frames checked, "
              f"{worker.get('leaks', 0)} leaks", flush=True)
    # The leaks first: they are what the run is for, whatever else failed beside them.
    errors = sorted(stats.errors.values(), key=lambda error: error.method != "LEAK")
    for error in errors[:2 * LEAKS_SHOWN]:
        print(f"[locust profile] {error.method} {error.name}: {error.error} ({error.occurrences}x)", flush=True)
    path = write_result("locust", measured=measured, checks=checks, quick=False)
    print(f"[locust profile] result: {path}", flush=True)
    if not all(check.passed for check in checks):
        environment.process_exit_code = 1
