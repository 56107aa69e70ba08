"""A handshake may open with what its instance kept of a session, never with what has changed since (PERF-02).

The reference backend keeps a session's standing (plan, role, live) between handshakes and
asks the database again only when the user's standing version in Redis has moved on
(backend/standing.py). These tests prove the promises that keeping must not bend, each on
an instance that has the session kept, by having opened a socket for it first:

- a session signed out on one instance is refused at the next handshake on another;
- a plan changed on one instance is the plan of the next socket on another;
- a session signed out while Redis was out of reach is refused on that instance as soon as
  Redis is back, and on the others once the revocation is announced.

The module starts one embedded PostgreSQL and Redis and three development instances: `a`
and `b` reach Redis directly, `cut` through a proxy the tests cut (support/redis_proxy.py).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.launcher import EmbeddedServices
from support.redis_proxy import RedisProxy

ORIGIN = "https://app.example.com"
ANSWER_SECONDS = 3.0
# The backend announces a revocation Redis could not take every 0.25 s; the subscription
# comes back as often. Time enough for both, on a busy machine.
ANNOUNCED_WITHIN_SECONDS = 5.0
T = TypeVar("T")


class ProxyLoop:
    """The Redis proxy, served by an event loop of its own in a thread, so tests can stay plain."""

    def __init__(self, redis_url: str):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="redis-proxy", daemon=True)
        self._thread.start()
        self.proxy: RedisProxy = self.run(RedisProxy(redis_url).start)

    def run(self, call: Callable[[], Awaitable[T]]) -> T:
        async def called() -> T:
            return await call()
        return asyncio.run_coroutine_threadsafe(called(), self._loop).result(10)

    def cut(self) -> None:
        self.run(self._async(self.proxy.cut))

    def restore(self) -> None:
        self.run(self._async(self.proxy.restore))

    @staticmethod
    def _async(call: Callable[[], None]) -> Callable[[], Awaitable[None]]:
        async def done() -> None:
            call()
        return done

    def close(self) -> None:
        self.run(self.proxy.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="module")
def deployment():
    """{"a": url, "b": url, "cut": url, "proxy": ProxyLoop, "operator": token}; stopped when the module ends."""
    embedded = EmbeddedServices()
    proxy = None
    try:
        database_url, redis_url = embedded.start_postgres(), embedded.start_redis()
        proxy = ProxyLoop(redis_url)
        operator = secrets.token_urlsafe(32)
        shared = {"DATABASE_URL": database_url, "JWT_SECRET": secrets.token_urlsafe(32), "ALLOWED_ORIGINS": ORIGIN,
                  "BACKEND_MODE": "development", "OPERATOR_TOKEN": operator}
        backends = embedded.start_backends({
            "a": {**shared, "REDIS_URL": redis_url},
            "b": {**shared, "REDIS_URL": redis_url},
            "cut": {**shared, "REDIS_URL": proxy.proxy.redis_url},
        })
        yield {"a": backends[0].url, "b": backends[1].url, "cut": backends[2].url, "proxy": proxy,
               "operator": operator}
    finally:
        embedded.stop()  # the instances first: nothing goes through the proxy when it closes
        if proxy is not None:
            proxy.close()


def sign_up(url: str) -> dict:
    """A new Free account; the token document of its first session."""
    email = f"kept-{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(url + "/auth/register", json={"email": email, "password": "a long passphrase"}, timeout=10)
    assert response.status_code == 201, f"sign-up failed: {response.status_code} {response.text}"
    return response.json()


async def open_socket(url: str, token: str) -> ClientConnection:
    """An accepted /ws socket, its `connected` frame read."""
    websocket = await connect(url.replace("http", "ws", 1) + "/ws", origin=ORIGIN, open_timeout=5,
                              additional_headers={"Authorization": f"Bearer {token}"})
    connected = json.loads(await asyncio.wait_for(websocket.recv(), ANSWER_SECONDS))
    assert connected["type"] == "connected", f"expected the connected frame first, got {connected}"
    return websocket


async def kept_on(url: str, token: str) -> None:
    """Two sockets opened and closed: the instance has the session's standing kept, and used it once."""
    for _ in range(2):
        await (await open_socket(url, token)).close()


async def handshake_status(url: str, token: str) -> int:
    """101 if the handshake is accepted (the socket is closed again), else the refusal's HTTP status."""
    try:
        websocket = await open_socket(url, token)
    except InvalidStatus as refused:
        return refused.response.status_code
    await websocket.close()
    return 101


async def closed_with(websocket: ClientConnection, within: float) -> int | None:
    """The close code the backend sends within `within` seconds, or None if the socket stays open."""
    try:
        async with asyncio.timeout(within):
            while True:
                await websocket.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
    except TimeoutError:
        return None


def sign_out(url: str, token: str) -> None:
    response = httpx.post(url + "/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 204, f"sign-out on {url} answered {response.status_code} {response.text}"


def test_a_session_signed_out_on_one_instance_is_refused_at_the_next_handshake_on_another(deployment):
    account = sign_up(deployment["a"])
    token = account["access_token"]

    async def scenario():
        await kept_on(deployment["b"], token)
        sign_out(deployment["a"], token)
        status = await handshake_status(deployment["b"], token)
        assert status == 401, (f"instance b answered the handshake of a session signed out on instance a with "
                               f"{status}; expected 401 at once, whatever b had kept of it")

    asyncio.run(scenario())


@pytest.mark.parametrize("how", ["self-service", "operator"])
def test_a_plan_changed_on_one_instance_is_the_plan_of_the_next_socket_on_another(deployment, how):
    account = sign_up(deployment["a"])  # Free: 3 sockets; Trial: 2
    token = account["access_token"]

    async def scenario():
        await kept_on(deployment["b"], token)
        if how == "self-service":
            changed = httpx.post(deployment["a"] + "/account/plan", json={"plan": "trial"},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
        else:
            changed = httpx.post(deployment["a"] + "/operator/entitlements",
                                 json={"user_id": account["user_id"], "plan": "trial"},
                                 headers={"Authorization": f"Bearer {deployment['operator']}"}, timeout=10)
        assert changed.status_code == 200, f"the plan change ({how}) answered {changed.status_code} {changed.text}"
        sockets = [await open_socket(deployment["b"], token) for _ in range(3)]
        try:
            code = await closed_with(sockets[0], within=ANSWER_SECONDS)
            assert code == 4008, (f"after a move to Trial (2 sockets) the first of 3 sockets on instance b was "
                                  f"{'closed with ' + str(code) if code else 'left open'}; expected 4008: "
                                  "b opened them with the Free plan it had kept")
        finally:
            for websocket in sockets:
                await websocket.close()

    asyncio.run(scenario())


def test_a_session_signed_out_while_redis_is_out_of_reach_is_refused_once_it_is_back(deployment):
    account = sign_up(deployment["a"])
    token = account["access_token"]
    proxy = deployment["proxy"]

    async def scenario():
        await kept_on(deployment["cut"], token)
        await kept_on(deployment["b"], token)
        on_b = await open_socket(deployment["b"], token)
        proxy.cut()
        try:
            sign_out(deployment["cut"], token)
        finally:
            proxy.restore()
        # The instance that signed it out knows at once, whatever it had kept.
        deadline = time.monotonic() + ANNOUNCED_WITHIN_SECONDS
        status = await handshake_status(deployment["cut"], token)
        while status == 503 and time.monotonic() < deadline:  # Redis not taken up again yet: fails closed
            await asyncio.sleep(0.05)
            status = await handshake_status(deployment["cut"], token)
        assert status == 401, (f"the instance where the session was signed out while Redis was out of reach "
                               f"answered its next handshake with {status} once Redis was back; expected 401")
        # The others, once the revocation is announced: it closes the session's socket there (4009).
        code = await closed_with(on_b, within=ANNOUNCED_WITHIN_SECONDS)
        assert code == 4009, f"the session's socket on instance b was {code or 'left open'}; expected 4009"
        status = await handshake_status(deployment["b"], token)
        assert status == 401, (f"instance b answered the handshake of the session signed out while Redis was out "
                               f"of reach with {status} after the revocation was announced; expected 401")

    asyncio.run(scenario())


def test_an_instance_keeps_and_uses_standings_only_while_it_hears_the_database():
    """StandingCache alone: nothing kept before the notices are heard or after they stop, a read
    begun before they were heard again is not kept, and forgetting a user forgets all theirs."""
    import redis.asyncio as redis

    from backend.standing import Standing, StandingCache

    kept = StandingCache(redis.Redis())  # no command is sent here
    alice, bob = uuid.uuid4(), uuid.uuid4()
    laptop, phone, bobs = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    standing = Standing("free", "member", "7")

    kept.keep(alice, laptop, standing, epoch=0)
    assert kept.kept(alice, laptop) is None, "kept a standing before the database's notices were heard"
    epoch_before = 0
    kept.listen(True, "heard")
    kept.keep(alice, laptop, standing, epoch_before)
    assert kept.kept(alice, laptop) is None, "kept a standing read before the notices were heard again"
    epoch = kept._epoch
    for user, session in ((alice, laptop), (alice, phone), (bob, bobs)):
        kept.keep(user, session, standing, epoch)
    assert kept.kept(alice, laptop) == standing and kept.kept(bob, bobs) == standing
    assert kept.kept(bob, laptop) is None, "a session kept for Alice answered for Bob"

    kept.forget_user(alice)
    assert kept.kept(alice, laptop) is None and kept.kept(alice, phone) is None
    assert kept.kept(bob, bobs) == standing, "forgetting Alice forgot Bob's session too"

    kept.listen(False, "lost")
    assert kept.kept(bob, bobs) is None, "used a kept standing while the database's notices were not heard"
    kept.listen(True, "heard again")
    assert kept.kept(bob, bobs) is None, "a standing kept before the notices stopped came back"
