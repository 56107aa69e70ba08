"""The run and its scenarios: what environment.py starts, hands to the steps, and stops."""

from __future__ import annotations

import dataclasses
import secrets
import signal
import time

import allure_commons

from .accounts import AccountApi
from .actors import Cast
from .catalogue import RequirementCatalogue, requirement_ids
from .connection import HandshakeRefused, RecordedConnection
from .database import DatabaseProbe
from .fanout import ChannelRecorder
from .launcher import EmbeddedServices, say
from .leaks import LeakDetector
from .loop import HarnessLoop
from .redaction import Redactor, describe_token, jwt_claims_unverified
from .report import RequirementLabeller, attach_text
from .settings import Settings
from .tokens import TokenFactory


class ScenarioWorld:
    """What one scenario knows: its cast, its leak detector, the outcome of its last handshake."""

    def __init__(self, harness: "Harness"):
        self.harness = harness
        self.leak_detector = LeakDetector(harness.redactor.redact)
        self.cast = Cast(harness.api, harness.chat_socket_url, self.leak_detector,
                         harness.redactor, harness.settings.event_timeout_seconds, harness.run_tag)
        self.last_handshake: HandshakeRefused | RecordedConnection | None = None
        self.notes: dict = {}  # what one step leaves for the next (e.g. events awaited)


class Harness:
    """Everything one run shares: settings, services it started, the loop, the target's clients."""

    def __init__(self, settings: Settings, loop: HarnessLoop, services: EmbeddedServices | None):
        self.settings = settings
        self.loop = loop
        self.services = services
        self.redactor = Redactor()
        self.redactor.register(settings.jwt_secret, "signing secret")
        self.run_tag = secrets.token_hex(3)
        self.catalogue = RequirementCatalogue.load()
        self.api: AccountApi | None = None
        self.config_document: dict = {}
        self.tokens: TokenFactory | None = None
        self.database: DatabaseProbe | None = None
        self.fanout: ChannelRecorder | None = None
        self.labeller: RequirementLabeller | None = None

    @classmethod
    def start(cls, userdata) -> "Harness":
        """Read the settings, start the embedded default if needed, connect the checks."""
        _sigterm_as_interrupt()
        settings = Settings.load(userdata)
        services = None
        loop = HarnessLoop()
        try:
            if settings.embedded_backend:
                services = EmbeddedServices()
                settings = _start_embedded(services, settings)
            else:
                say(f"target: {settings.target_url} (nothing started by this run)")
            harness = cls(settings, loop, services)
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
        self.api = AccountApi(self.settings.target_url)
        self.config_document = await self.api.config_document()
        self.tokens = TokenFactory.for_target(self.settings, self.config_document)
        self.database = await DatabaseProbe.connect(self.settings.database_url)
        self.fanout = await ChannelRecorder.start(self.settings.redis_url)

    @property
    def chat_socket_url(self) -> str:
        """The chat socket's URL: the target's address and the path its config document gives."""
        path = self.config_document.get("endpoints", {}).get("websocket", "/ws")
        return self.settings.websocket_url.rstrip("/") + path

    # -- scenarios -----------------------------------------------------------------------

    def new_scenario(self, scenario) -> ScenarioWorld:
        ids = requirement_ids(scenario.effective_tags)
        if not ids:
            raise AssertionError(f"scenario {scenario.name!r} has no @req.<ID> tag")
        unknown = [rid for rid in ids if rid not in self.catalogue]
        if unknown:
            raise AssertionError(f"scenario {scenario.name!r} names requirements missing from "
                                 f"features/catalogue.toml: {', '.join(unknown)}")
        return ScenarioWorld(self)

    def finish_scenario(self, world: ScenarioWorld, scenario_failed: bool) -> None:
        """Final isolation sweep, transcripts to the report, every socket closed.

        Raises IsolationViolation if any socket saw another party's data after the last step.
        """
        cast = world.cast
        sweep_error = None
        try:
            self.loop.run(cast.fence_all(self.settings.backstop_seconds),
                          timeout=cast.timeout + self.settings.backstop_seconds + 1)
        except (AssertionError, TimeoutError) as error:
            sweep_error = error
        finally:
            self.loop.run(cast.close_all(), timeout=10)
        self._attach_evidence(world)
        try:
            world.leak_detector.raise_if_violated()
        except AssertionError as violation:
            self.labeller.fail_current_scenario(str(violation))
            raise
        if sweep_error is not None and not scenario_failed:
            message = f"the final isolation sweep could not drain every socket: {sweep_error}"
            self.labeller.fail_current_scenario(message)
            raise AssertionError(message)

    def _attach_evidence(self, world: ScenarioWorld) -> None:
        redact = self.redactor.redact
        for connection in world.cast.connections:
            attach_text(f"transcript: {connection.owner}", connection.transcript_text(redact))
        claims = []
        for actor in world.cast.actors:
            for device in actor.devices.values():
                token_claims = jwt_claims_unverified(device.tokens.access_token) or {}
                claims.append(f"{device}: {describe_token(device.tokens.access_token)} claims={token_claims}")
        if claims:
            attach_text("tokens (claims only, signatures removed)", redact("\n".join(claims)))
        for violation in world.leak_detector.violations:
            attach_text(f"isolation violation: {violation.owner} -> {violation.receiver}", str(violation))

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
            started = time.monotonic()
            self.services.stop()
            say(f"embedded services stopped in {time.monotonic() - started:.1f} s")

    async def _disconnect(self) -> None:
        for closable in (self.fanout, self.database, self.api):
            if closable is not None:
                await closable.close()


def _start_embedded(services: EmbeddedServices, settings: Settings) -> Settings:
    database_url = settings.database_url or services.start_postgres()
    redis_url = settings.redis_url or services.start_redis()
    secret = secrets.token_urlsafe(32)
    backend = services.start_backend("development", {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "JWT_SECRET": secret,
        "BACKEND_MODE": "development",
    })
    return dataclasses.replace(settings, target_url=backend.url, jwt_secret=secret,
                               database_url=database_url, redis_url=redis_url)


def _sigterm_as_interrupt() -> None:
    """Treat SIGTERM like Ctrl-C, so a terminated run still stops what it started."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
