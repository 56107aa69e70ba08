@area.RES
Feature: Rapid comings and goings leave nothing behind and nobody stuck

  Phones drop in tunnels, browsers reload, apps reconnect in a loop. However people come and
  go, and however they hang up, the service forgets what they left, never crashes, and counts
  each person right the moment they come back.

  Background:
    Given Alice has an account on the Free plan
    And Alice may keep at most 3 connections open

  @req.RES-04 @critical
  Scenario: After rapid reconnects and abandoned handshakes Alice is counted right at once
    When Alice connects from her laptop and disconnects 20 times
    And Alice abandons 10 handshakes halfway on her laptop
    And a client opens a connection and sends half an upgrade request
    Then the service's open connection count is back where it started within 2 seconds
    And Alice can open 3 tabs on her phone at the same moment and keep every one

  @req.RES-04 @critical
  Scenario: Many simultaneous sign-ins for one person end with exactly her limit, and no stuck count
    When Alice opens 12 tabs on her laptop at the same moment
    Then exactly 3 of Alice's tabs stay connected
    And the others are disconnected as "connection limit"
    When Alice closes every tab on her laptop
    Then the service's open connection count is back where it started within 2 seconds
    And Alice can open 3 tabs on her phone at the same moment and keep every one
