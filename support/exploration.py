"""Stateful exploration of isolation (ISO-08): three people on two devices each, operations at random.

A Hypothesis ``RuleBasedStateMachine`` drives the actors the steps use (support/actors.py,
support/replay.py) against a running target: Alice, Bob and Carol, each on a laptop and a
phone, interleave asking their agent, starting threads kept to one device or for all their
devices, writing in them, reading them, listing them, renewing their sign-in, signing out
and reconnecting. A model says who may see what. After every step, every open socket is
fenced and two invariants are checked:

- the leak detector saw nothing (no frame of anyone's reached anyone else, or another device
  for what belongs to one device);
- every device received exactly what the model says: each expected frame, and nothing else
  (no reply, event or thread message the model did not predict).

Every step also keeps the sentence of the step catalogue (``behave --steps-catalog``) that
says what it did, so a failure, shrunk by Hypothesis to its shortest sequence, is printed as
a Gherkin scenario a product owner can paste into a feature (``Exploration.scenario``).

``explore(services_url, secret, ...)`` runs it; tests/test_exploration.py runs it briefly with
a fixed seed, ``python -m bench.explore`` for longer. No behave here.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from .actors import Cast
from .instances import Instance
from .leaks import LeakDetector
from .loop import HarnessLoop
from .redaction import Redactor
from .replay import perform
from .tokens import TokenFactory

PEOPLE = ("Alice", "Bob", "Carol")
DEVICES = ("laptop", "phone")
PRONOUN = {"Alice": "her", "Bob": "his", "Carol": "her"}
PLAN = "Pro"


@dataclass
class Target:
    """What the exploration runs against: an instance, its signing secret, the loop it runs on."""

    url: str
    secret: str
    loop: HarnessLoop
    timeout: float = 5.0
    backstop: float = 0.02
    instance: Instance | None = None

    def start(self) -> "Target":
        self.instance = self.loop.run(Instance.discover("the explored instance", self.url))
        return self

    def close(self) -> None:
        if self.instance is not None:
            self.loop.run(self.instance.api.close())


@dataclass
class ModelThread:
    id: str
    owner: str
    session: str | None  # the session it is kept to; None: for all the owner's devices
    title: str


@dataclass
class Model:
    """Who may see what: the sessions of each device, the threads, and what each socket must receive."""

    threads: list[ModelThread] = field(default_factory=list)
    expected: dict[int, Counter] = field(default_factory=dict)  # socket -> (type, id) it must receive

    def visible(self, person: str, session: str) -> list[ModelThread]:
        return [t for t in self.threads if t.owner == person and t.session in (None, session)]


class Exploration(RuleBasedStateMachine):
    """The machine; ``target`` is set before it runs (see ``explore``)."""

    target: Target = None  # type: ignore[assignment]

    def __init__(self):
        super().__init__()
        self.sentences: list[str] = []
        self.model = Model()
        self.detector = LeakDetector()
        self.redactor = Redactor()
        self.redactor.register(self.target.secret, "signing secret")
        instance = self.target.instance
        auth = instance.config.get("auth", {})
        tokens = TokenFactory(self.target.secret, "HS256", auth.get("issuer", ""), auth.get("audience", ""))
        self.cast = Cast([instance], self.detector, self.redactor, self.target.timeout, secrets.token_hex(3), tokens)
        self.checked: dict[int, int] = {}  # socket -> transcript index checked up to

    # -- running on the harness loop -----------------------------------------------------

    def run(self, coroutine):
        return self.target.loop.run(coroutine, timeout=self.target.timeout * 4)

    def say(self, sentence: str, kind: str = "When") -> None:
        """Keep the catalogue's sentence for what a step did; ``kind``: When (an action) or Then (a check)."""
        keyword = "And" if self._last_kind == kind else kind
        self._last_kind = kind
        self.sentences.append(f"{keyword} {sentence}")

    _last_kind = "Given"

    def actor(self, person: str):
        return self.cast.actor(person)

    def socket(self, person: str, device: str):
        entry = self.actor(person).devices.get(device)
        return entry.connection if entry is not None else None

    def expect(self, person: str, device: str, kind: str, frame_id) -> None:
        connection = self.socket(person, device)
        if connection is not None and connection.is_open:
            self.model.expected.setdefault(id(connection), Counter())[(kind, frame_id)] += 1

    # -- the set-up every sequence starts from ---------------------------------------------

    @initialize()
    def everyone_connected(self):
        async def start():
            for person in PEOPLE:
                await self.actor(person).sign_up(PLAN.lower())
            await asyncio.gather(*(self.actor(p).connect(d) for p in PEOPLE for d in DEVICES))

        self.run(start())
        self.sentences += [f"Given {', '.join(PEOPLE[:-1])} and {PEOPLE[-1]} have accounts on the {PLAN} plan",
                           "And each of them is connected from their laptop and phone"]
        for person in PEOPLE:
            for device in DEVICES:
                self.checked[id(self.socket(person, device))] = len(self.socket(person, device).transcript)

    # -- what people do ------------------------------------------------------------------

    def connected(self, person: str, device: str) -> bool:
        connection = self.socket(person, device)
        return connection is not None and connection.is_open

    people, devices = st.sampled_from(PEOPLE), st.sampled_from(DEVICES)

    @rule(person=people, device=devices)
    def ask(self, person, device):
        if not self.connected(person, device):
            return
        actor = self.actor(person)
        question = f"What is on {person}'s list {len(self.sentences)}?"
        request = self.run(actor.ask(device, question))
        self.run(actor.answer_to(request))
        for kind in ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed"):
            self.expect(person, device, kind, request.id)
        self.say(f'{person} asks {PRONOUN[person]} agent "{question}" from {PRONOUN[person]} {device}')

    @rule(person=people, device=devices, kept=st.booleans())
    def start_thread(self, person, device, kept):
        if not self.connected(person, device):
            return
        actor = self.actor(person)
        entry = actor.device(device)
        title = f"Notes {len(self.model.threads) + 1}"
        since = len(entry.connection.transcript)
        thread = self.run(actor.create_thread(device, title, "session" if kept else "user"))
        reply = next(f for f in entry.connection.received(since) if f.type == "thread_created")
        self.expect(person, device, "thread_created", reply.id)
        self.model.threads.append(ModelThread(thread, person, entry.tokens.session_id if kept else None, title))
        where = "kept to that device" if kept else f"for all {PRONOUN[person]} devices"
        self.say(f'{person} starts a thread "{title}" on {PRONOUN[person]} {device} {where}')

    def last_thread(self, person: str) -> ModelThread | None:
        mine = [t for t in self.model.threads if t.owner == person]
        return mine[-1] if mine else None

    @rule(person=people, device=devices)
    def write(self, person, device):
        thread = self.last_thread(person)
        if thread is None or not self.connected(person, device):
            return
        actor = self.actor(person)
        entry = actor.device(device)
        text = f"Note {len(self.sentences)}"
        answer = self.run(actor.thread_request(device, "write to", thread.id, text=text))
        if thread.session in (None, entry.tokens.session_id):
            for other in DEVICES:
                other_entry = actor.devices.get(other)
                if other_entry is not None and thread.session in (None, other_entry.tokens.session_id):
                    self.expect(person, other, "thread_message", answer.id)
            if answer.type != "thread_message":
                self.expect(person, device, answer.type, answer.id)  # the check will name it
        else:
            self.expect(person, device, "error", answer.id)
        self.say(f'{person} writes "{text}" in the thread from {PRONOUN[person]} {device}')

    @rule(person=people, device=devices)
    def read(self, person, device):
        thread = self.last_thread(person)
        if thread is None or not self.connected(person, device):
            return
        actor = self.actor(person)
        entry = actor.device(device)
        answer = self.run(actor.thread_request(device, "read", thread.id))
        visible = thread.session in (None, entry.tokens.session_id)
        self.expect(person, device, "thread" if visible else "error", answer.id)
        outcome = "can read the thread" if visible else "is told the thread does not exist"
        self.say(f"{person}'s {device} {outcome}", "Then")

    @rule(person=people, device=devices)
    def list_threads(self, person, device):
        if not self.connected(person, device):
            return
        entry = self.actor(person).device(device)
        since = len(entry.connection.transcript)
        self.run(perform(self.actor(person), device, "threadList"))
        reply = next(f for f in entry.connection.received(since) if f.type == "threads")
        self.expect(person, device, "threads", reply.id)
        listed = sorted(t["thread_id"] for t in reply.message["payload"]["threads"])
        expected = sorted(t.id for t in self.model.visible(person, entry.tokens.session_id))
        self.say(f'{person}\'s {device} performs "threadList" with private data while everyone listens')
        if listed != expected:
            raise AssertionError(f"{entry} listed {len(listed)} thread(s), expected its own {len(expected)}: "
                                 f"listed {listed}, expected {expected}")

    @rule(person=people, device=devices)
    def renew(self, person, device):
        if not self.connected(person, device):
            return
        actor = self.actor(person)
        entry = actor.device(device)
        since = len(entry.connection.transcript)
        self.run(entry.refresh(self.cast.api))
        self.run(entry.renew(entry.tokens.access_token, self.target.timeout))
        reply = next(f for f in entry.connection.received(since) if f.type == "reauthenticated")
        self.expect(person, device, "reauthenticated", reply.id)
        self.say(f"{person}'s {device} refreshes its session")
        self.say(f"{person}'s {device} renews its token")

    @rule(person=people, device=devices)
    def sign_out(self, person, device):
        if not self.connected(person, device):
            return
        actor = self.actor(person)
        connection = self.socket(person, device)
        self.run(actor.sign_out(device))
        self.run(connection.wait_closed(self.target.timeout))
        # A new sign-in is a new session: the device's threads kept to the old one are out of its reach.
        del actor.devices[device]
        self.say(f"{person} signs out on {PRONOUN[person]} {device}")

    @rule(person=people, device=devices)
    def reconnect(self, person, device):
        actor = self.actor(person)
        old = self.socket(person, device)
        if old is not None and old.is_open:
            self.run(old.close())
        connection = self.run(actor.connect(device))
        welcome = next(f for f in connection.received() if f.type == "connected")
        self.checked[id(connection)] = 0
        self.expect(person, device, "connected", welcome.id)
        self.say(f"{person} connects from {PRONOUN[person]} {device}")

    # -- what must hold after every step ---------------------------------------------------

    @invariant()
    def isolation_holds(self):
        """Both invariants, in this order, once every socket is drained (Hypothesis orders invariants itself)."""
        if not self.sentences:
            return
        self.run(self.cast.fence_all(self.target.backstop))
        self.nobody_receives_what_is_not_theirs()
        self.every_device_receives_exactly_what_the_model_says()

    def nobody_receives_what_is_not_theirs(self):
        violations = self.detector.violations
        if violations:
            raise AssertionError(str(violations[0]))

    def every_device_receives_exactly_what_the_model_says(self):
        for connection in self.cast.connections:
            start = self.checked.get(id(connection), 0)
            received = Counter((f.type, f.id) for f in connection.received(start) if f.type != "fence")
            expected = self.model.expected.pop(id(connection), Counter())
            self.checked[id(connection)] = len(connection.transcript)
            missing, extra = expected - received, received - expected
            if missing or extra:
                raise AssertionError(f"{connection.owner} received what the model does not say: "
                                     f"missing {sorted(missing)}, extra {sorted(extra)}")

    def teardown(self):
        self.run(self.cast.close_all())

    # -- the printout ----------------------------------------------------------------------

    def scenario(self, error: BaseException) -> str:
        """The sequence that failed, as a scenario of ISO-08 a product owner can paste into a feature."""
        lines = ["@req.ISO-08 @critical", "Scenario: Found by exploration: " + str(error).splitlines()[0][:90]]
        lines += [f"  {sentence}" for sentence in self.sentences]
        lines.append(f"  {'And' if self._last_kind == 'Then' else 'Then'} nobody receives anything that belongs "
                     f"to someone else")
        return "\n".join(lines)


class ExplorationFailed(AssertionError):
    """The shrunk sequence, and the scenario it reads as."""

    def __init__(self, scenario: str, cause: BaseException):
        super().__init__(f"the exploration found a sequence that breaks isolation:\n\n{scenario}\n\ncause: {cause}")
        self.scenario = scenario


def explore(target: Target, *, seed: int, examples: int, steps: int) -> int:
    """Run the machine; raise ExplorationFailed with the shrunk scenario. Returns the examples run."""
    from hypothesis import Phase, seed as fixed_seed
    from hypothesis.stateful import run_state_machine_as_test

    Exploration.target = target
    last: dict = {}
    runs = Counter()

    class Recorded(Exploration):
        def __init__(self):
            super().__init__()
            last["machine"] = self
            runs["examples"] += 1

    configured = settings(max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
                          derandomize=False, print_blob=False, report_multiple_bugs=False,
                          suppress_health_check=list(HealthCheck),
                          phases=[Phase.generate, Phase.shrink])
    try:
        run_state_machine_as_test(fixed_seed(seed)(Recorded), settings=configured)
    except Exception as error:  # Hypothesis re-raises the shrunk failure last
        machine = last.get("machine")
        scenario = machine.scenario(error) if machine is not None else "(no sequence was recorded)"
        raise ExplorationFailed(scenario, error) from error
    return runs["examples"]
