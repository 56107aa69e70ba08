@area.AUTH
Feature: Only the owner of a valid token gets a socket

  Every conversation starts with a handshake. The service decides who is connecting before
  it opens a socket, so a missing, forged or stale token never gets as far as a socket, and
  a good one always does. An authentication bypass would expose every user's conversations;
  a flaky handshake breaks chat, which is most of what people use the product for.

  Background:
    Given Alice has an account on the Free plan

  @req.AUTH-01 @critical
  Scenario: Alice's token opens a socket bound to her and her session
    When Alice connects from her laptop
    Then the socket belongs to Alice's laptop session

  @req.AUTH-02 @critical
  Scenario Outline: Alice's token is accepted in the subprotocol header: <carrier>
    When Alice connects from her laptop with the token in the <carrier>
    Then the socket belongs to Alice's laptop session
    And the service selected the marker protocol, never the token

    Examples:
      | carrier              |
      | prefixed subprotocol |
      | encoded subprotocol  |

  @req.AUTH-03 @critical
  Scenario: A handshake without a token is refused before any socket opens
    When Alice tries to connect from her laptop with no token
    Then the handshake is refused with HTTP 401
    And no socket was opened

  @req.AUTH-04 @critical
  Scenario Outline: An invalid token is refused at the handshake: <token>
    When Alice tries to connect from her laptop with <token>
    Then the handshake is refused with HTTP 401 or 403
    And no socket was opened
    And the refusal says no more than a refusal without a token

    Examples:
      | token                            |
      | a malformed token                |
      | a tampered token                 |
      | a token signed with the wrong key |
      | a token from the wrong issuer    |
      | a token for the wrong audience   |
      | a token for an unknown user      |

  @req.AUTH-05 @critical
  Scenario: An expired token is refused at the handshake
    When Alice tries to connect from her laptop with an expired token
    Then the handshake is refused with HTTP 401 or 403
    And no socket was opened
    And the refusal says no more than a refusal without a token
