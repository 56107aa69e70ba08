@area.META
Feature: The isolation check catches a leak

  A green run means "no leak was seen" only if the check can see one. Here a copy of
  Alice's answer is slipped into the delivery path of Bob's phone, as a routing bug would
  do, and the isolation check must report it, naming both people and the frame.

  @req.META-01 @critical
  Scenario: A frame with Alice's data on Bob's phone is reported
    Given Alice and Bob have accounts on the Free plan
    And Alice is connected from her laptop
    And Bob is connected from his phone
    When Alice asks her agent "What is my account balance?"
    And a copy of Alice's answer is slipped into Bob's phone event channel
    Then the isolation check fails, naming Alice, Bob's phone and the frame
