"""Every family of the attack catalogue can fail: one realistic defect per family, planted into the
reference backend (tests/planted/defective_backend.py), and the catalogue's scenarios run against it.

The same machinery as tests/test_planted_contract_defects.py (its Lab, Case and Fails, and
its check of a case): the scenarios of a requirement must fail in the named step, saying
what the check says, in the named rows of the Examples (by the attack's name in the
`attack` or `case` column, never by a title), and only there; the same scenarios pass
against the unpatched backend (the control).
"""

from __future__ import annotations

import pytest

from test_planted_contract_defects import Case, Fails, Lab
from test_planted_contract_defects import test_a_planted_defect_fails_the_scenario_that_covers_it as check_case

FORGED = "features/security/forged_tokens.feature"
HANDSHAKES = "features/security/handshakes.feature"
ORIGINS = "features/security/origins.feature"
MESSAGES = "features/security/message_path.feature"
PROTOCOL = "features/security/protocol.feature"

ACCEPTED = "the handshake was accepted (101) and a socket opened"
NONE_ROWS = ['a token that names the algorithm "none"', 'a token that names the algorithm "None"',
             'a token that names the algorithm "NONE"', 'a token that names the algorithm "nOnE"',
             'a token that names the algorithm "none" and keeps a real signature']
TWO_CREDENTIALS = ["her token twice in two Authorization headers", "two Authorization headers for her and someone else",
                   "a second credential for someone else", "a bearer token and an encoded token for someone else",
                   "two prefixed subprotocol tokens", "her token both prefixed and encoded in the subprotocols"]
PREFIX_PASSES = ["a suffix look-alike", "another port", "the default port written out", "a trailing slash",
                 "userinfo before another host", "a comma list that starts with the product's own"]
SURROGATES = ["a lone high surrogate in a question", "a lone low surrogate in a question",
              "a lone surrogate in a thread title"]
RESERVED_BITS = ["a text frame with the first reserved bit set", "a text frame with the second reserved bit set",
                 "a text frame with the third reserved bit set", "a ping with every reserved bit set"]

CASES = [
    # Signature and algorithm: every capitalisation of none, with and without a signature.
    Case("AUTH-11", "alg-none-accepted", FORGED, [
        Fails("refused_everywhere", ACCEPTED, row=row) for row in NONE_ROWS]),
    # Header injection: the key set and the certificate a token points to are fetched.
    Case("AUTH-11", "key-url-fetched", FORGED, [
        Fails("key_server_never_asked", "the service fetched a key from the attacker's address", row=row)
        for row in ("a token that points to the attacker's key set", "a token that points to the attacker's certificate")]),
    # Claims: a token without an expiry opens a socket that never expires.
    Case("AUTH-11", "exp-not-required", FORGED, [
        Fails("refused_everywhere", ACCEPTED, row="a token without an expiry")]),
    # Carriers: the first of two credentials wins.
    Case("AUTH-10", "first-credential-wins", HANDSHAKES, [
        Fails("refused_everywhere", ACCEPTED, row=row) for row in TWO_CREDENTIALS]),
    # Origin, on a production instance: compared by prefix.
    Case("LIM-03", "origin-startswith", ORIGINS, [
        Fails("refused_everywhere", ACCEPTED, row=row) for row in PREFIX_PASSES],
        mode="production"),
    # The message path: a socket that stops being governed after a bad message.
    Case("LIM-05", "ungoverned-after-surrogate", MESSAGES, [
        Fails("still_governed", "after the abuse, the connection limit no longer governs", row=row)
        for row in SURROGATES] + [
        Fails("disconnected_after_expiry", "is still connected; expected to be disconnected with code 4001")]),
    # The protocol: reserved bits taken as if clear.
    Case("LIM-06", "reserved-bits-ignored", PROTOCOL, [
        Fails("disconnected_with_code", "expected it to close with 1002", row=row) for row in RESERVED_BITS] + [
        Fails("disconnected_with_code", "closed the socket with 1000", row="a close frame with a reserved bit set")]),
]


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    """Starts the cases this session selected (all, or those picked with -k), all at once."""
    cases = [item.callspec.params["case"] for item in request.session.items
             if item.module.__name__ == __name__ and "case" in getattr(item, "callspec", {}).params]
    lab = Lab(cases, tmp_path_factory.mktemp("planted-attack-defects"))
    yield lab
    lab.close()


@pytest.mark.parametrize("case", [pytest.param(case, id=str(case)) for case in CASES])
def test_a_planted_attack_defect_fails_the_row_that_covers_it(case, lab):
    """The rows of the family fail in the named check, saying what went wrong, and pass in the control."""
    check_case(case, lab)
