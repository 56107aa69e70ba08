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
