"""The attack catalogue's own parts, without a backend: tokens forged as named, checks that say
what, where and how, frames laid out as RFC 6455 says, tokens redacted in every message."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from support.accounts import SessionTokens
from support.attacks import (FORGED_TOKENS, SIGNATURE, AttackRun, Attempt, ForgeKit, check_refused_everywhere,
                             carried)
from support.raw_frames import PING, RawFrame, UpgradeAnswer, breach, upgrade_request
from support.redaction import Redactor, jwt_claims_unverified
from support.tokens import TokenFactory

FACTORY = TokenFactory("s" * 40, "HS256", "https://issuer.example.test", "chat-api")
VICTIM = SessionTokens("11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222",
                       FACTORY.mint("11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"),
                       "opaque-refresh-token", 900)


def kit() -> ForgeKit:
    async def nobody():
        raise AssertionError("not needed")
    return ForgeKit(FACTORY, VICTIM, "http://127.0.0.1:9", nobody, nobody, lambda token: None)


def forge(name: str) -> str:
    return asyncio.run(FORGED_TOKENS[name][1](kit()))


@pytest.mark.parametrize("name", [n for n, (family, _) in FORGED_TOKENS.items() if family == SIGNATURE])
def test_a_signature_attack_keeps_the_real_user_session_and_claims(name):
    claims = jwt_claims_unverified(forge(name))
    assert claims["sub"] == VICTIM.user_id and claims["sid"] == VICTIM.session_id
    assert claims["iss"] == FACTORY.issuer and claims["aud"] == FACTORY.audience


def test_the_none_tokens_name_none_in_the_capitalisation_of_their_name():
    token = forge('a token that names the algorithm "nOnE"')
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "nOnE" and token.endswith(".")


def run_with(answer: UpgradeAnswer, baseline_body: str = '{"error":"unauthorized"}') -> AttackRun:
    return AttackRun("a token that names no algorithm",
                     [Attempt("a token that names no algorithm", "encoded subprotocol", "mcp", answer)],
                     UpgradeAnswer(401, body=baseline_body))


@pytest.mark.parametrize("answer, says", [
    (UpgradeAnswer(101), "the handshake was accepted (101) and a socket opened"),
    (UpgradeAnswer(500, body="oops"), "a server error, HTTP 500"),
    (UpgradeAnswer(403, body="{}"), "refused with HTTP 403; expected HTTP 401"),
    (UpgradeAnswer(401, body='{"error":"bad signature"}'), "the refusal tells why (signature)"),
    (UpgradeAnswer(401, body='{"error":"unauthorized","hint":"x"}'), "says more than the plain one"),
    (UpgradeAnswer(None), "no answer"),
])
def test_a_wrong_answer_names_the_attack_the_carrier_and_the_address(answer, says):
    with pytest.raises(AssertionError) as failed:
        check_refused_everywhere(run_with(answer), {401})
    message = str(failed.value)
    assert says in message
    assert "'a token that names no algorithm' in the encoded subprotocol at mcp" in message


def test_the_plain_refusal_passes():
    check_refused_everywhere(run_with(UpgradeAnswer(401, body='{"error":"unauthorized"}')), {401})


def test_a_token_in_a_failure_message_is_redacted():
    redactor = Redactor()
    redactor.register(VICTIM.access_token, "access token")
    run = run_with(UpgradeAnswer(403, body=f"you sent {VICTIM.access_token}"))
    run.redact = redactor.redact
    with pytest.raises(AssertionError) as failed:
        check_refused_everywhere(run, {401})
    assert VICTIM.access_token not in str(failed.value)


def test_the_carriers_are_the_contracts():
    assert carried("bearer header", "t.o.k") == [("Authorization", "Bearer t.o.k")]
    assert carried("prefixed subprotocol", "t.o.k") == [("Sec-WebSocket-Protocol", "jwt-auth, jwt.t.o.k")]
    assert carried("encoded subprotocol", "t.o.k")[0][1] == "jwt-auth, " + base64.urlsafe_b64encode(
        b"t.o.k").rstrip(b"=").decode()


def test_a_frame_is_masked_and_unmasks_to_its_payload():
    data = RawFrame(PING, b"hello", rsv=4).encode()
    assert data[0] == 0x80 | 0x40 | PING and data[1] == 0x80 | 5
    mask = data[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(data[6:])) == b"hello"


def test_an_upgrade_request_keeps_repeated_headers_and_raw_bytes():
    request = upgrade_request("ws://127.0.0.1:1/ws", [("Origin", "a"), ("Origin", b"\xff")], http_version="HTTP/1.0",
                              key=None)
    assert request.startswith(b"GET /ws HTTP/1.0\r\n") and b"Sec-WebSocket-Key" not in request
    assert request.count(b"Origin: ") == 2 and b"Origin: \xff" in request


def test_a_protocol_case_cited_with_the_wrong_autobahn_group_is_refused():
    assert breach("a ping with 126 bytes of payload", "2.x").autobahn == "2.x"
    with pytest.raises(ValueError, match="follows the Autobahn case group 2.x, not 5.x"):
        breach("a ping with 126 bytes of payload", "5.x")
