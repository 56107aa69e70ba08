@area.RES
Feature: A full instance turns newcomers away and keeps serving the people it holds

  Each instance of the service can hold only so many connections, and says how many.
  When one is full, a newcomer is told to come back shortly, and everyone already
  connected carries on as if nothing had happened.

  @req.RES-05 @capacity.small @normal
  Scenario: Past its capacity an instance refuses new connections while the open ones keep working
    Given the service accepts at most 5 connections at once
    And Alice, Bob and Carol have accounts on the Free plan
    And Alice is connected from her laptop, phone and tablet
    And Bob is connected from his laptop and phone
    When Carol tries to connect from her laptop
    Then the handshake is refused with HTTP 503 as "at_capacity"
    When Alice's laptop sends a ping with the id "still-there"
    Then Alice's laptop receives a "pong" with the id "still-there"
    When Alice asks her agent "What is on my calendar today?" from her phone
    Then Alice receives the agent's full answer
