@area.ISO
Feature: A user's conversation never reaches anyone else

  Alice and Bob are customers of the same platform. Whatever Alice asks her agent, and
  whatever it answers, is hers alone. A single leak is a privacy breach and costs the trust
  of every customer, so this holds for two users and for many at once.

  @req.ISO-01 @critical
  Scenario: Bob sees nothing of Alice's conversation
    Given Alice and Bob have accounts on the Pro plan
    And Alice is connected from her laptop
    And Bob is connected from his phone
    When Alice asks her agent "What is my account balance?"
    Then Alice receives the agent's full answer
    And Bob receives nothing that belongs to Alice

  @req.ISO-02 @critical
  Scenario: Five people asking at the same time each hear only their own answers
    Given Alice, Bob, Carol, Dave and Erin have accounts on the Free plan
    And each of them is connected from their laptop
    When each of them asks their agent a private question at the same time
    Then each of them receives the agent's full answer to their own question
    And nobody receives anything that belongs to someone else
