@area.CONN
Feature: A bounded, self-cleaning set of connections

  Every open socket costs the service memory and work. Each person may keep a few open at
  once, sockets nobody answers on are let go, and nothing is left behind when people
  disconnect, so one person's habits never exhaust the service for everyone.

  Background:
    Given Alice has an account on the Free plan

  @req.CONN-01 @critical
  Scenario: Connecting a fourth device closes Alice's oldest socket
    Given Alice may keep at most 3 connections open
    And Alice is connected from her laptop
    And Alice is connected from her phone
    And Alice is connected from her tablet
    When Alice connects from her desktop app
    Then Alice's laptop is disconnected as "connection limit"
    And Alice's phone, tablet and desktop app stay connected

  @req.CONN-01 @critical
  Scenario: Opening many tabs at the same moment still leaves exactly the limit open
    Given Alice may keep at most 3 connections open
    When Alice opens 6 tabs on her laptop at the same moment
    Then exactly 3 of Alice's tabs stay connected
    And the others are disconnected as "connection limit"

  @req.CONN-01 @instances.two @critical
  Scenario: The limit holds across the service's instances
    Given Alice may keep at most 3 connections open
    When Alice opens 6 tabs on her laptop at the same moment, spread over two instances
    Then exactly 3 of Alice's tabs stay connected
    And the others are disconnected as "connection limit"

  @req.CONN-02 @critical
  Scenario: The service lets go of a device that stops answering its heartbeat
    When Alice's laptop connects and then stops answering heartbeats
    Then Alice's laptop received heartbeats at the advertised interval
    And Alice's laptop was disconnected within the advertised heartbeat timeout

  @req.CONN-02 @normal
  Scenario: An app's own ping is answered with a pong
    Given Alice is connected from her laptop
    When Alice's laptop sends a ping with the id "are-you-there"
    Then Alice's laptop receives a "pong" with the id "are-you-there"

  @req.CONN-02 @mode.production @normal
  Scenario: The production heartbeat is within the business limit
    When a client reads the service's published configuration
    Then the heartbeat is sent at least every 45 seconds

  @req.CONN-03 @critical
  Scenario: The service forgets a socket soon after it disconnects
    Given Alice is connected from her laptop
    When Alice's laptop disconnects
    Then the service stops counting Alice's laptop's socket within 2 seconds

  @req.CONN-04 @normal
  Scenario Outline: A client that never finishes its handshake is dropped: <case>
    When a client opens a connection and <behaviour>
    Then the service drops it within the advertised handshake timeout

    Examples:
      | case             | behaviour                         |
      | silent           | sends nothing                     |
      | half a request   | sends half an upgrade request     |

  @req.CONN-05 @normal
  Scenario: A thousand connects and disconnects leave nothing behind
    Given 10 people have accounts on the Free plan
    When each of them connects and disconnects 100 times
    Then the service's open connection count is back where it started within 2 seconds
    And the service's memory has grown by less than 10 MB
