@area.ISO
Feature: Everyone acts only as themselves

  Customers on every plan act within their own identity. Nobody opens a socket in someone
  else's name, speaks for someone else, renews into someone else's identity, or finds out
  whether someone else's conversation threads exist.

  @req.ISO-03 @critical
  Scenario Outline: A <plan> customer cannot open Bob's personal socket address
    Given Alice has an account on the <plan> plan
    And Bob has an account on the Free plan
    When Alice tries to connect from her laptop to Bob's personal socket address
    Then the handshake is refused with HTTP 403
    And no socket was opened

    Examples:
      | plan       |
      | Free       |
      | Pro        |
      | Enterprise |

  @req.ISO-03 @critical
  Scenario: A message that claims to come from Bob is refused and changes nothing
    Given Alice and Bob have accounts on the Pro plan
    And Alice is connected from her laptop
    And Bob is connected from his phone
    When Alice asks her agent "Transfer my savings" claiming to be Bob
    Then Alice's laptop is told "forbidden_identity"
    And nothing is recorded for Bob
    And Bob receives nothing that belongs to Alice

  @req.ISO-06 @critical
  Scenario Outline: Alice cannot <action> Bob's thread, nor tell that it exists
    Given Alice and Bob have accounts on the Pro plan
    And Alice is connected from her laptop
    And Bob is connected from his phone
    And Bob has a thread "Salary negotiation" for all his devices
    When Alice tries to <action> Bob's thread
    Then Alice is told the thread does not exist, exactly as for a thread that never existed
    And Bob receives nothing that belongs to Alice

    Examples:
      | action       |
      | read         |
      | write to     |
      | subscribe to |
