"""The run and its scenarios: what environment.py starts, hands to the steps, and stops."""

from __future__ import annotations

import dataclasses
import secrets
import signal
import time

import allure_commons

from .actors import Cast
from .catalogue import RequirementCatalogue, requirement_ids
from .connection import RecordedConnection
from .contract_schema import ContractValidator, FrameCheck
from .database import DatabaseProbe
from .fanout import ChannelRecorder
from .instances import Instance
from .launcher import EmbeddedServices, say
from .leaks import LeakDetector
from .loop import HarnessLoop
from .operations import Inventory, IsolationCoverage
from .redaction import Redactor, describe_token, jwt_claims_unverified
from .report import RequirementLabeller, attach_text
from .settings import Settings
from .redis_proxy import RedisProxy
from .store_proxy import StoreProxy
from .tokens import TokenFactory
from .world import Remembered, remembered


class ScenarioWorld:
    """What one scenario knows: its instances, cast and leak detector, and what its steps left.

    Each fact a step leaves for a later one is a named attribute; reading one that no earlier
    step left says which sentence is missing (support/world.py).
    """

    group = Remembered("Given Alice, Bob and Carol have accounts on the Free plan", "a group of people")
    last_handshake = Remembered("When Alice tries to connect from her laptop with an expired token",
                                "a handshake")
    crowd = Remembered("When each of them connects at the same moment as 25 handshakes with forged tokens",
                       "a crowd of handshakes")
    tabs = Remembered("When Alice opens 6 tabs on her laptop at the same moment", "tabs opened at once")
    churn_baseline = Remembered("When each of them connects and disconnects 100 times", "connects and disconnects")
    dropped_after = Remembered("When a client opens a connection and sends nothing", "an unfinished handshake")
    published = Remembered("When a client reads the service's published configuration", "the config document")
    security = Remembered("When a client reads the service's published security settings", "the security document")
    health = Remembered("When an operator reads the service's security health", "the health document")
    attempt = Remembered("When Alice tries to connect from her laptop with an expired token", "a refused attempt")
    connection_limit = Remembered("Given Alice may keep at most 3 connections open", "the connection limit")
    rate_limit = Remembered("Given Alice may send at most 30 messages a minute", "the message rate")
    start_attempt = Remembered("When a production instance is started with a signing secret of 31 bytes",
                               "an instance started by the scenario")
    planted = Remembered("When a copy of Alice's answer is slipped into Bob's phone event channel", "a planted leak")
    interrupted = Remembered("When the database becomes unreachable while Alice signs up",
                             "an operation an outage cut short")
    scenario_name = "a scenario"  # behave's title, for the isolation coverage notes

    def __init__(self, harness: "Harness", instances: list[Instance]):
        self.harness = harness
        self.instances = instances
        self.leak_detector = LeakDetector(harness.redactor.redact)
        # Every frame of the scenario's sockets against docs/asyncapi.yaml, beside the leak detector.
        self.frame_check = FrameCheck(harness.contract, harness.redactor.redact) if harness.contract else None
        RecordedConnection.frame_check = self.frame_check
        self.cast = Cast(instances, self.leak_detector, harness.redactor,
                         harness.settings.event_timeout_seconds, harness.run_tag, harness.tokens)

    @property
    def backstop(self) -> float:
        return self.harness.settings.backstop_seconds

    def stated_limit(self, code: str, actor) -> int | None:
        """The limit behind refusal ``code`` as the scenario stated it, or None (then the published one counts)."""
        if code == "rate_limited":
            return self.rate_limit if remembered(self, "rate_limit") else None
        return actor.daily_runs

    async def note_connection_baseline(self) -> None:
        """Note, once per scenario, what the instance counts before the comings and goings begin."""
        if not remembered(self, "churn_baseline"):
            health = await self.cast.instance.security_health()
            self.churn_baseline = (health["connections"]["open"], health["memory_rss_bytes"])

    def members(self):
        """The actors of the group an earlier step named."""
        return [self.cast.actor(name) for name in self.group]


class Harness:
    """Everything one run shares: settings, services it started, the loop, the target's clients."""

    def __init__(self, settings: Settings, loop: HarnessLoop, services: EmbeddedServices | None):
        self.settings = settings
        self.loop = loop
        self.services = services
        self.redactor = Redactor()
        self.redactor.register(settings.jwt_secret, "signing secret")
        self.redactor.register(settings.operator_token, "operator token")
        # The contract's message schemas, compiled once for the run (None: SPEC_FRAME_CHECK=off).
        self.contract = ContractValidator.load() if settings.frame_check else None
        self.run_tag = secrets.token_hex(3)
        self.catalogue = RequirementCatalogue.load()
        # Which operations of the contract ran under observation (ISO-08), for the report.
        self.isolation = IsolationCoverage(Inventory.load())
        self.instances: list[Instance] = []
        self.tokens: TokenFactory | None = None
        self.database: DatabaseProbe | None = None
        self.fanout: ChannelRecorder | None = None
        self.labeller: RequirementLabeller | None = None
        self.store_proxy: StoreProxy | None = None
        self.redis_proxy: RedisProxy | None = None
        self.controllable: Instance | None = None
        # The embedded default's instance for the large load profile (started with -D load=large).
        self.load_instance: Instance | None = None
        self.load_url: str | None = None

    @classmethod
    def start(cls, userdata) -> "Harness":
        """Read the settings, start the embedded default if needed, connect the checks."""
        _sigterm_as_interrupt()
        settings = Settings.load(userdata)
        services = None
        loop = HarnessLoop()
        try:
            proxies, load_url = (None, None), None
            if settings.embedded_backend:
                services = EmbeddedServices()
                settings, proxies, load_url = _start_embedded(services, settings, loop)
            else:
                say(f"target: {settings.target_url} (nothing started by this run)")
            harness = cls(settings, loop, services)
            harness.store_proxy, harness.redis_proxy = proxies
            harness.load_url = load_url
            harness.loop.run(harness._connect())
        except BaseException:
            loop.close()
            if services is not None:
                services.stop()
            raise
        harness.labeller = RequirementLabeller(
            harness.catalogue, userdata.get("requirement_link_pattern", "features/catalogue.toml#{}"))
        allure_commons.plugin_manager.register(harness.labeller, name="requirement-labeller")
        return harness

    async def _connect(self) -> None:
        operator = self.settings.operator_token
        self.instances = [await Instance.discover(f"instance {number}", url, operator)
                          for number, url in enumerate(self.settings.target_urls, 1)]
        if self.store_proxy is not None:
            # Not a target instance: only the scenarios that cut its links, or fill it, use it.
            self.controllable = await Instance.discover("the instance behind cuttable database and Redis links",
                                                        self.store_proxy.instance_url, operator)
        if self.load_url is not None:
            self.load_instance = await Instance.discover("the instance for the large load profile", self.load_url,
                                                         operator)
        self.tokens = TokenFactory.for_target(self.settings, self.config_document)
        self.database = await DatabaseProbe.connect(self.settings.database_url)
        self.fanout = await ChannelRecorder.start(self.settings.redis_url)

    def cuttable_store(self) -> StoreProxy:
        """The proxy in front of the database of the instance whose link the suite may cut."""
        if self.store_proxy is None:
            raise AssertionError("this scenario cuts the service's database link, which only the embedded default "
                                 "can do (tag it @identity_store.controllable)")
        return self.store_proxy

    def cuttable_redis(self) -> RedisProxy:
        """The proxy in front of the Redis of the instance whose links the suite may cut."""
        if self.redis_proxy is None:
            raise AssertionError("this scenario cuts the service's Redis link, which only the embedded default "
                                 "can do (tag it @redis.controllable)")
        return self.redis_proxy

    @staticmethod
    def clock() -> float:
        """Wall-clock seconds, the clock tokens' ``exp`` and transcripts use."""
        return time.time()

    @property
    def config_document(self) -> dict:
        """The first instance's config document (what a client discovers first)."""
        return self.instances[0].config

    # -- scenarios -----------------------------------------------------------------------

    def new_scenario(self, scenario) -> ScenarioWorld | None:
        """The scenario's world, or None after skipping a scenario the target cannot serve."""
        ids = requirement_ids(scenario.effective_tags)
        if not ids:
            raise AssertionError(f"scenario {scenario.name!r} has no @req.<ID> tag")
        unknown = [rid for rid in ids if rid not in self.catalogue]
        if unknown:
            raise AssertionError(f"scenario {scenario.name!r} names requirements missing from "
                                 f"features/catalogue.toml: {', '.join(unknown)}")
        tags = [str(t) for t in scenario.effective_tags]
        needs = [CONTROLLABLE_TAGS[tag] for tag in tags if tag in CONTROLLABLE_TAGS]
        if needs:
            # The controllable instance first (the scenario's own), then the others of its mode.
            instances = [self.controllable, *(i for i in self.instances if i.mode == self.controllable.mode)] \
                if self.controllable else []
            reason = None if instances else (f"it {needs[0]}, which only the embedded default can do; "
                                              "the target is external")
        else:
            instances, reason = choose_instances(self.instances, tags)
        if "load.large" in tags and self.settings.load != "large":
            reason = "it is the large load profile, minutes long; run it with -D load=large (or SPEC_LOAD=large)"
        elif "load.large" in tags and self.load_instance is not None:
            instances = [self.load_instance]
        if reason:
            say(f"skipped {scenario.name!r}: {reason}")
            scenario.skip(reason=reason)
            return None
        world = ScenarioWorld(self, instances)
        world.scenario_name = scenario.name
        return world

    def finish_scenario(self, world: ScenarioWorld, scenario_failed: bool) -> None:
        """Final isolation sweep, transcripts to the report, every socket closed.

        Raises IsolationViolation if any socket saw another party's data after the last step.
        """
        cast = world.cast
        self._restore_links()
        sweep_error = None
        try:
            self.loop.run(cast.fence_all(self.settings.backstop_seconds),  # skipped when already drained
                          timeout=cast.timeout + self.settings.backstop_seconds + 1)
        except (AssertionError, TimeoutError) as error:
            sweep_error = error
        finally:
            self.loop.run(cast.close_all(), timeout=10)
        self._attach_evidence(world)
        try:
            world.leak_detector.raise_if_violated()
            if world.frame_check is not None:
                world.frame_check.raise_if_violated()
        except AssertionError as violation:
            self.isolation.settle(passed=False)
            self.labeller.fail_current_scenario(self.redactor.redact(str(violation)))
            raise
        self.isolation.settle(passed=not scenario_failed and sweep_error is None)
        if sweep_error is not None and not scenario_failed:
            message = self.redactor.redact(f"the final isolation sweep could not drain every socket: {sweep_error}")
            self.labeller.fail_current_scenario(message)
            raise AssertionError(message)

    def _restore_links(self) -> None:
        """A scenario that failed during its outage left a link cut: the next one finds it whole."""
        for link in (self.store_proxy, self.redis_proxy):
            if link is not None and link.cut_off:
                link.restore()

    def _attach_evidence(self, world: ScenarioWorld) -> None:
        redact = self.redactor.redact
        for connection in world.cast.connections:
            # Redacted whole, in one pass: per line it cost the run seconds (thousands of registered tokens).
            attach_text(f"transcript: {connection.owner}", redact(connection.transcript_text(_as_written)))
        claims = []
        for actor in world.cast.actors:
            for device in actor.devices.values():
                token_claims = jwt_claims_unverified(device.tokens.access_token) or {}
                claims.append(f"{device}: {describe_token(device.tokens.access_token)} claims={token_claims}")
        if claims:
            attach_text("tokens (claims only, signatures removed)", redact("\n".join(claims)))
        for violation in world.leak_detector.violations:
            attach_text(f"isolation violation: {violation.owner} -> {violation.receiver}", str(violation))
        for outside in (world.frame_check.violations if world.frame_check is not None else []):
            attach_text(f"frame outside the contract: {outside.socket}", str(outside))

    # -- the end of the run --------------------------------------------------------------

    def stop(self) -> None:
        """Close the checks' connections and stop everything this run started."""
        try:
            self.loop.run(self._disconnect(), timeout=10)
        except Exception as error:
            say(f"closing the checks' connections failed: {error}")
        self.loop.close()
        if self.labeller is not None:
            allure_commons.plugin_manager.unregister(name="requirement-labeller")
        if self.services is not None:
            self.services.stop()  # says so, with how long it took

    async def _disconnect(self) -> None:
        instances = self.instances + [i for i in (self.controllable, self.load_instance) if i is not None]
        for closable in (self.fanout, self.database, *(i.api for i in instances), self.store_proxy,
                         self.redis_proxy):
            if closable is not None:
                await closable.close()


# The embedded deployment: two development instances with short timers, so time-based
# scenarios take seconds, one production instance with the production defaults, and one
# development instance whose database and Redis connections run through proxies the suite
# can cut, and which takes few sockets, so that it can be filled.
_SHORT_TIMERS = {"BACKEND_MODE": "development", "HEARTBEAT_INTERVAL_SECONDS": "0.5",
                 "HEARTBEAT_TIMEOUT_SECONDS": "1", "HANDSHAKE_TIMEOUT_SECONDS": "1",
                 "IDENTITY_STORE_COOLDOWN_SECONDS": "1",
                 # A conversation's last 8 events kept for resuming: two answers outrun it.
                 "RESUME_RETAINED_EVENTS": "8",
                 # Development only, and advertised in /ws/config: sign-ups take ~1 ms instead of ~50.
                 "PASSWORD_HASH_COST": "10"}
EMBEDDED_INSTANCES = {
    "development-1": _SHORT_TIMERS,
    "production": {"BACKEND_MODE": "production"},
    "development-2": _SHORT_TIMERS,
    "store-outage": {**_SHORT_TIMERS, "MAX_SOCKETS_PER_INSTANCE": "5"},
}
CONTROLLABLE = "store-outage"
# With -D load=large, one more development instance, with the production timers, for the large load
# profile alone: a release-size crowd on sub-second heartbeats and a 1 s handshake timeout would
# measure those timers rather than the service (10,000 pings a second at 5,000 sockets).
LOAD_INSTANCE = "load"
LOAD_ENVIRONMENT = {"BACKEND_MODE": "development", "PASSWORD_HASH_COST": "10"}
# The tags of scenarios that run on the controllable instance -> what they do with it.
CONTROLLABLE_TAGS = {
    "identity_store.controllable": "cuts the service's database link",
    "redis.controllable": "cuts the service's Redis link",
    "capacity.small": "fills an instance to its capacity",
    "starts.instances": "starts instances of the reference backend of its own",
}


def _start_embedded(services: EmbeddedServices, settings: Settings,
                    loop: HarnessLoop) -> tuple[Settings, tuple[StoreProxy, RedisProxy], str | None]:
    """Start the embedded deployment; the settings that point at it, the link proxies, and the
    large load profile's instance (None unless -D load=large)."""
    database_url = settings.database_url or services.start_postgres()
    redis_url = settings.redis_url or services.start_redis()
    proxy = loop.run(StoreProxy(database_url).start())
    redis_proxy = loop.run(RedisProxy(redis_url).start())
    secret = secrets.token_urlsafe(32)
    # The deployment's operator credential (plan and role changes, health details); the
    # suite holds it as an operator would.
    operator = settings.operator_token or secrets.token_urlsafe(32)
    shared = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "JWT_SECRET": secret,
              "OPERATOR_TOKEN": operator, "ALLOWED_ORIGINS": "https://app.example.com"}
    environments = {name: {**shared, **own} for name, own in EMBEDDED_INSTANCES.items()}
    environments[CONTROLLABLE]["DATABASE_URL"] = proxy.database_url
    environments[CONTROLLABLE]["REDIS_URL"] = redis_proxy.redis_url
    if settings.load == "large":
        environments[LOAD_INSTANCE] = {**shared, **LOAD_ENVIRONMENT}
    backends = services.start_backends(environments)
    shared_urls = [b.url for b in backends if b.name not in (CONTROLLABLE, LOAD_INSTANCE)]
    load_url = next((b.url for b in backends if b.name == LOAD_INSTANCE), None)
    proxy.instance_url = redis_proxy.instance_url = next(b.url for b in backends if b.name == CONTROLLABLE)
    return dataclasses.replace(settings, target_url=",".join(shared_urls), jwt_secret=secret,
                               operator_token=operator, database_url=database_url,
                               redis_url=redis_url), (proxy, redis_proxy), load_url


def choose_instances(instances: list[Instance], tags: list[str]) -> tuple[list[Instance], str | None]:
    """The instances a scenario runs on, first one default, or the reason it cannot run.

    ``@mode.<mode>`` asks for instances in that mode; ``@instances.two`` for two in one mode.
    Without a mode tag, the first instance's mode is used.
    """
    modes = [tag.split(".", 1)[1] for tag in tags if tag.startswith("mode.")]
    mode = modes[0] if modes else instances[0].mode
    chosen = [instance for instance in instances if instance.mode == mode]
    offered = ", ".join(str(i) for i in instances)
    if not chosen:
        return [], f"it needs an instance in {mode} mode; the target offers {offered}"
    if "instances.two" in tags and len(chosen) < 2:
        return [], f"it needs two instances in {mode} mode; the target offers {offered}"
    return chosen, None


def _as_written(text: str) -> str:
    return text


def _sigterm_as_interrupt() -> None:
    """Treat SIGTERM like Ctrl-C, so a terminated run still stops what it started."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
