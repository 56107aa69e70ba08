@area.AUTH
Feature: Handshakes hold up under a crowd and when the identity store fails

  Monday morning everybody opens the app at once, and some day the database will be out
  of reach. Neither may let anyone in who should not be, or leave the service stuck
  once the database is back.

  @req.AUTH-08 @critical
  Scenario: Fifty handshakes at the same moment each end as they should
    Given 25 people have accounts on the Free plan
    When each of them connects at the same moment as 25 handshakes with forged tokens
    Then each of them is connected
    And every forged handshake is refused with HTTP 401
    And no handshake failed with a server error or close code 1011

  @req.AUTH-09 @identity_store.controllable @critical
  Scenario: Handshakes fail closed while the identity store is out of reach, and recover without a restart
    Given Alice has an account on the Free plan
    When the identity store becomes unreachable for the service
    Then Alice's handshakes are refused with HTTP 503, never accepted
    And after repeated failures the service stops trying the identity store for a while
    When the identity store is reachable again
    Then Alice can connect from her laptop again within the advertised cool-down

  @req.AUTH-09 @identity_store.controllable @critical
  Scenario: A session that was let in before is refused too while the identity store is out of reach
    Given Alice has an account on the Free plan
    And Alice is connected from her laptop
    When the identity store becomes unreachable for the service
    Then Alice's handshakes are refused with HTTP 503, never accepted
    When the identity store is reachable again
    Then Alice can connect from her laptop again within the advertised cool-down
