@area.LIFE
Feature: Signing up, signing in, refreshing and signing out behave as people expect

  People sign up once, sign in on each of their devices, stay signed in while their app
  quietly refreshes its session, and sign out of one device without losing the others. A
  stolen or signed-out token that still works would be a breach; a refresh that fails
  would sign people out in the middle of a conversation.

  @req.LIFE-01 @critical
  Scenario: Alice signs up and can start right away
    When Alice signs up on the Free plan
    Then Alice receives an access token and a refresh token
    And the service has an account for Alice on the Free plan

  @req.LIFE-01 @normal
  Scenario Outline: Signing up again with an address already taken is refused: <spelling>
    Given Alice has an account on the Free plan
    When someone signs up again with Alice's e-mail address written <spelling>
    Then the sign-up is refused because the address is taken

    Examples:
      | spelling                 |
      | exactly as she wrote it  |
      | in capital letters       |

  @req.LIFE-02 @critical
  Scenario Outline: Signing in on her <device> gives Alice a session for that device
    Given Alice has an account on the Free plan
    When Alice signs in on her <device>
    Then the service records a session for each of Alice's devices
    And Alice's <device> holds tokens bound to its own session

    Examples:
      | device      |
      | phone       |
      | tablet      |
      | desktop app |

  @req.LIFE-03 @critical
  Scenario: Alice's phone refreshes its session and keeps working
    Given Alice has an account on the Free plan
    And Alice is signed in on her phone
    When Alice's phone refreshes its session
    Then Alice's phone holds new tokens for the same session
    And Alice can connect from her phone with the new token
    And Alice's phone can refresh its session again with the new refresh token

  @req.LIFE-03 @critical
  Scenario: A refresh token used a second time is refused and ends that session
    Given Alice has an account on the Free plan
    And Alice is connected from her phone
    And Alice's phone has refreshed its session
    When someone presents Alice's phone's old refresh token again
    Then the refresh is refused
    And Alice's phone is disconnected as "session revoked"
    And Alice's phone's latest token is refused at the handshake
    And Alice's phone's session is recorded as revoked

  @req.LIFE-04 @critical
  Scenario: Signing out on the laptop ends the laptop's session, and only that one
    Given Alice has an account on the Free plan
    And Alice is connected from her laptop
    And Alice is connected from her phone
    When Alice signs out on her laptop
    Then Alice's laptop is disconnected as "session revoked"
    And Alice's laptop's token is refused at the handshake
    And Alice's laptop's session is recorded as revoked
    And Alice's phone stays connected

  @req.LIFE-04 @instances.two @critical
  Scenario: Signing out reaches the laptop's socket on every instance
    Given Alice has an account on the Free plan
    And Alice is connected from her laptop through the second instance
    When Alice signs out on her laptop
    Then Alice's laptop is disconnected as "session revoked"
    And Alice's laptop's token is refused at the handshake on every instance
