"""The leak detector on its own: what counts as a violation, and what it says."""

from __future__ import annotations

import json

import pytest

from support.leaks import SESSION, IsolationViolation, LeakDetector, Party

ALICE_LAPTOP = Party("Alice", "user-a", "session-a1", "laptop")
ALICE_PHONE = Party("Alice", "user-a", "session-a2", "phone")
BOB_PHONE = Party("Bob", "user-b", "session-b1", "phone")


def frame(**payload) -> str:
    return json.dumps({"type": "agent_completed", "id": "x", "payload": payload})


def test_another_users_marker_is_a_violation_naming_both_parties_and_the_frame():
    detector = LeakDetector()
    marker = detector.private_marker(ALICE_LAPTOP)
    leaked = frame(answer=f"your balance (ref {marker})")
    detector.inspect(BOB_PHONE, leaked)
    with pytest.raises(IsolationViolation) as raised:
        detector.raise_if_violated()
    message = str(raised.value)
    assert "Bob's phone received Alice's laptop's private data" in message
    assert marker in message and '"type": "agent_completed"' in message


def test_another_users_identity_is_a_violation():
    detector = LeakDetector()
    detector.own(Party("Alice", "user-a"), "user-a", "user id")
    assert detector.inspect(BOB_PHONE, frame(user_id="user-a"))


def test_own_data_is_no_violation_and_session_data_stays_on_its_session():
    detector = LeakDetector()
    marker = detector.private_marker(ALICE_LAPTOP, SESSION)
    detector.own(Party("Alice", "user-a"), "user-a", "user id")
    assert detector.inspect(ALICE_LAPTOP, frame(answer=marker, user_id="user-a")) == []
    assert detector.inspect(ALICE_PHONE, frame(user_id="user-a")) == []
    on_phone = detector.inspect(ALICE_PHONE, frame(answer=marker))
    assert on_phone and "Alice's phone received Alice's laptop's private data" in str(on_phone[0])


def test_each_violation_is_reported_once_and_planted_ones_can_be_taken():
    detector = LeakDetector()
    marker = detector.private_marker(ALICE_LAPTOP)
    detector.inspect(BOB_PHONE, frame(answer=marker))
    assert len(detector.take_planted()) == 1
    detector.raise_if_violated()  # nothing new
    detector.inspect(BOB_PHONE, frame(answer=marker))
    with pytest.raises(IsolationViolation):
        detector.raise_if_violated()


def test_the_frame_in_a_report_is_redacted():
    detector = LeakDetector(redact=lambda text: text.replace("s3cret", "<redacted>"))
    marker = detector.private_marker(ALICE_LAPTOP)
    violation = detector.inspect(BOB_PHONE, frame(answer=marker, token="s3cret"))[0]
    assert "s3cret" not in str(violation)


def test_nothing_reached_covers_every_device_of_a_user_and_one_device_of_a_session():
    from support.questions import check_nothing_reached

    detector = LeakDetector()
    marker = detector.private_marker(ALICE_LAPTOP)
    detector.inspect(ALICE_PHONE, frame(answer=marker))  # the laptop's run on the phone
    alice, bob = Party("Alice", "user-a"), Party("Bob", "user-b")
    check_nothing_reached(detector, bob, alice)  # nothing of Alice's reached Bob
    check_nothing_reached(detector, ALICE_LAPTOP, ALICE_PHONE)  # nor the phone's data the laptop
    with pytest.raises(AssertionError, match="Alice's phone received Alice's laptop's private data"):
        check_nothing_reached(detector, ALICE_PHONE, ALICE_LAPTOP)
    with pytest.raises(AssertionError, match="Alice's phone received"):
        check_nothing_reached(detector, alice, alice)


# -- markers that say whose they are, identities by lookup, and a cost that does not grow --

import base64
import time
import uuid

from support.leaks import USER, MARKER_PREFIX

ALICE_ID, BOB_ID = str(uuid.uuid4()), str(uuid.uuid4())
ALICE = Party("Alice", ALICE_ID)
ALICE_LAPTOP_U = Party("Alice", ALICE_ID, str(uuid.uuid4()), "laptop")
ALICE_PHONE_U = Party("Alice", ALICE_ID, str(uuid.uuid4()), "phone")
BOB_PHONE_U = Party("Bob", BOB_ID, str(uuid.uuid4()), "phone")
KEY = bytes(range(32))


def alice_registered(detector: LeakDetector) -> None:
    """What Actor.sign_up and a device's sign-in declare."""
    detector.own(ALICE, ALICE_ID, "user id")
    detector.own(ALICE, "alice.run1.c0ffee@example.test", "e-mail address")
    detector.own(ALICE, ALICE_LAPTOP_U.session_id, "session id (laptop)")


@pytest.mark.parametrize("leaked, what", [
    (lambda marker: f"your balance (ref {marker})", "private data (marker pd-"),
    (lambda marker: ALICE_ID, "user id"),
    (lambda marker: ALICE_ID.upper(), "user id"),  # a target may print UUIDs in capitals
    (lambda marker: f"events:session:{ALICE_LAPTOP_U.session_id}", "session id (laptop)"),
    (lambda marker: "mailto:Alice.Run1.C0ffee@Example.TEST", "e-mail address"),
])
def test_each_kind_of_planted_leak_is_caught(leaked, what):
    detector = LeakDetector()
    alice_registered(detector)
    marker = detector.private_marker(ALICE_LAPTOP_U, SESSION)
    found = detector.inspect(BOB_PHONE_U, frame(answer=leaked(marker)))
    assert len(found) == 1 and found[0].what.startswith(what), found
    assert found[0].owner.user_id == ALICE_ID and found[0].receiver == BOB_PHONE_U


def test_a_session_scoped_marker_on_the_same_users_other_device_is_caught_and_user_data_is_not():
    detector = LeakDetector()
    alice_registered(detector)
    session_marker = detector.private_marker(ALICE_LAPTOP_U, SESSION)
    user_marker = detector.private_marker(ALICE, USER)
    assert detector.inspect(ALICE_PHONE_U, frame(answer=user_marker, user_id=ALICE_ID)) == []
    found = detector.inspect(ALICE_PHONE_U, frame(answer=session_marker))
    assert [str(v.receiver) for v in found] == ["Alice's phone"] and found[0].owner == ALICE_LAPTOP_U
    assert detector.inspect(ALICE_LAPTOP_U, frame(answer=session_marker)) == []


def test_a_marker_says_whose_it_is_to_any_detector_with_the_key():
    """What a Locust worker relies on: a marker made in one process, judged in another."""
    maker, judge = LeakDetector(key=KEY), LeakDetector(key=KEY)
    marker = maker.private_marker(ALICE_LAPTOP_U, SESSION)
    assert marker.startswith(MARKER_PREFIX) and len(marker) == 83
    owner = judge.owner_of(marker)
    assert (owner.user_id, owner.session_id) == (ALICE_ID, ALICE_LAPTOP_U.session_id)
    assert judge.inspect(ALICE_LAPTOP_U, frame(answer=marker)) == []
    on_phone = judge.inspect(ALICE_PHONE_U, frame(answer=marker))
    on_bob = judge.inspect(BOB_PHONE_U, frame(answer=marker))
    assert on_phone and on_bob
    assert f"Bob's phone received user {ALICE_ID}'s session {ALICE_LAPTOP_U.session_id}'s private data" in str(on_bob[0])
    # Ids that are not UUIDs travel as keyed digests: still decidable, not readable.
    odd = LeakDetector(key=KEY).private_marker(ALICE_LAPTOP, SESSION)
    assert judge.inspect(ALICE_LAPTOP, frame(answer=odd)) == [] and judge.inspect(BOB_PHONE, frame(answer=odd))


def test_a_forged_marker_is_no_violation_and_is_counted():
    """Right shape, wrong MAC: nobody's data. Made under another key, or edited by a target."""
    judge = LeakDetector(key=KEY)
    other_key = LeakDetector(key=bytes(32)).private_marker(ALICE_LAPTOP_U, SESSION)
    genuine = LeakDetector(key=KEY).private_marker(ALICE_LAPTOP_U, SESSION)
    raw = bytearray(base64.b32decode(genuine[3:].upper()))
    raw[1:17] = uuid.UUID(BOB_ID).bytes  # claims to be Bob's, to fail Bob's own socket
    relabelled = MARKER_PREFIX + base64.b32encode(bytes(raw)).decode().lower()
    for forged in (other_key, relabelled):
        assert judge.owner_of(forged) is None
        assert judge.inspect(BOB_PHONE_U, frame(answer=forged)) == []
    assert judge.forged_markers == 2


def test_values_of_any_other_shape_are_still_found_as_whole_tokens():
    detector = LeakDetector()
    detector.own(ALICE_LAPTOP_U, "th_42", "thread 'Taxes'", SESSION)
    assert detector.inspect(BOB_PHONE_U, frame(thread_id="th_42"))
    assert detector.inspect(BOB_PHONE_U, frame(channel="events:thread:th_42"))
    assert detector.inspect(ALICE_PHONE_U, frame(thread_id="th_42"))
    assert detector.inspect(ALICE_LAPTOP_U, frame(thread_id="th_42")) == []


def _per_frame_seconds(owners: int, frames: int = 5000) -> float:
    detector = LeakDetector()
    for number in range(owners):
        user = Party(f"P{number}", str(uuid.uuid4()))
        device = Party(user.user_name, user.user_id, str(uuid.uuid4()), "laptop")
        detector.own(user, user.user_id, "user id")
        detector.own(user, device.session_id, "session id (laptop)")
        detector.own(user, f"p{number}.run.c0ffee@example.test", "e-mail address")
        marker = detector.private_marker(device, SESSION)
    answer = json.dumps({"type": "agent_completed", "id": "p-laptop-chat-7", "ts": "2026-12-01T09:00:00Z",
                         "payload": {"run_id": str(uuid.uuid4()), "agent": "assistant", "tool": "knowledge_lookup",
                                     "answer": f'You asked "What is my balance? (ref {marker})". It is 42.'}})
    for _ in range(500):
        detector.inspect(device, answer)
    started = time.perf_counter()
    for _ in range(frames):
        detector.inspect(device, answer)
    return (time.perf_counter() - started) / frames


def test_the_cost_per_frame_does_not_grow_with_the_number_of_owners():
    small = min(_per_frame_seconds(10) for _ in range(3))
    large = min(_per_frame_seconds(10_000) for _ in range(3))
    print(f"\nper-frame cost: {small * 1e6:.1f} us at 10 owners, {large * 1e6:.1f} us at 10,000 "
          f"(ratio {large / small:.2f})")
    assert large < 3 * small, "the leak detector's cost per frame grows with the number of owners"
