@area.AUTH
Feature: A socket lives only as long as its token

  A token that expires ends the conversation it opened, unless the app renews it in time.
  Renewing keeps the conversation going, and never lets a socket become someone else's.

  Background:
    Given Alice and Bob have accounts on the Free plan

  @req.AUTH-05 @critical
  Scenario: Alice's socket is closed soon after her token expires
    Given Alice is connected from her laptop with a token that expires in 2 seconds
    Then Alice's laptop is disconnected as "token expired" within 2 seconds of the expiry

  @req.AUTH-06 @critical
  Scenario: Alice renews her token and keeps her socket
    Given Alice is connected from her laptop with a token that expires in 2 seconds
    When Alice's laptop renews its token
    Then Alice's laptop is still connected 2 seconds after the old token expired

  @req.AUTH-06 @req.ISO-06 @critical
  Scenario Outline: Renewing with a token that is not the socket's own is refused: <token>
    Given Alice is connected from her laptop
    And Alice is signed in on her phone
    And Bob is signed in on his phone
    When Alice's laptop renews its token with <token>
    Then Alice's laptop is told "reauthentication_refused"
    And Alice's laptop is disconnected as "reauthentication refused"
    And Alice receives nothing that belongs to Bob

    Examples:
      | token                        |
      | the token of Bob's phone     |
      | the token of Alice's phone   |
