@area.RES
Feature: The service rides out a database or Redis outage and recovers by itself

  Some day the database or Redis will be out of reach for a while, in the middle of
  whatever people are doing. Whatever was cut short is either done completely or not at
  all, the person is told plainly to try again, nobody receives anyone else's events, and
  once the outage is over the service works again without anyone restarting it.

  @req.RES-01 @identity_store.controllable @critical
  Scenario: A sign-up cut short by the database leaves no account half-made
    When the database becomes unreachable while Alice signs up
    Then Alice is told to try again later
    When the database is reachable again
    Then what Alice was doing is recorded completely or not at all
    And Alice succeeds when she tries again

  @req.RES-01 @identity_store.controllable @critical
  Scenario Outline: Work cut short by the database is refused plainly and leaves nothing half-written: <work>
    Given Alice has an account on the Free plan
    And Alice is connected from her laptop
    And Alice has started a thread "Errands" on her laptop kept to that device
    When the database becomes unreachable while Alice <work>
    Then Alice is told to try again later
    When the database is reachable again
    Then what Alice was doing is recorded completely or not at all
    And Alice succeeds when she tries again

    Examples:
      | work                           |
      | signs in on her phone          |
      | refreshes her laptop's session |
      | writes in her thread           |
      | asks her agent a question      |

  @req.RES-02 @redis.controllable @critical
  Scenario: While Redis is out of reach events are refused, never misdelivered, and delivery resumes by itself
    Given Alice and Bob have accounts on the Free plan
    And Alice is connected from her laptop
    And Bob is connected from his phone
    When Redis becomes unreachable for the service
    And Alice asks her agent "What is my account balance?"
    Then Alice's laptop is told "unavailable"
    And Alice's laptop still answers a ping
    When Redis is reachable again
    Then Alice's laptop receives events again within 5 seconds
    And Alice can still ask her agent and receive the full answer
    And Bob receives nothing that belongs to Alice

  @req.RES-02 @redis.controllable @critical
  Scenario: While Redis is out of reach nobody is let in past the connection limit
    Given Alice has an account on the Free plan
    And Alice may keep at most 3 connections open
    And Alice is connected from her laptop, phone and tablet
    When Redis becomes unreachable for the service
    Then Alice's handshakes are refused with HTTP 503, never accepted
    When Redis is reachable again
    Then Alice's phone receives events again within 5 seconds
    And Alice's phone and tablet stay connected

  @req.RES-02 @redis.controllable @critical
  Scenario: A sign-out while Redis is out of reach still takes effect on every instance
    Given Alice has an account on the Free plan
    And Alice is connected from her laptop
    And Alice is connected from her laptop through the second instance
    When Redis becomes unreachable for the service
    And Alice signs out on her laptop
    And Redis is reachable again
    Then every tab on Alice's laptop is disconnected as "session revoked"
    And Alice's laptop's token is refused at the handshake on every instance

  @req.RES-02 @redis.controllable @critical
  Scenario: A sign-out the service cannot announce yet is refused at once by the other instances
    Given Alice has an account on the Free plan
    And Alice is connected from her laptop through the second instance
    When Redis becomes unreachable for the service
    And Alice signs out on her laptop
    Then Alice's laptop's token is refused at the handshake on the second instance
    When Redis is reachable again
    Then Alice's laptop's token is refused at the handshake on every instance
