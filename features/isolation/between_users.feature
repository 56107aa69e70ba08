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

  @req.ISO-04 @critical
  Scenario: Ten people asking five private questions each, at once, each hear only their own answers
    Given ten people have accounts on the Pro plan
    And each of them is connected from their laptop and phone
    When each of them asks their agent 5 private questions from their laptop at the same time
    Then each of them receives the agent's full answers to their own questions
    And nobody receives anything that belongs to someone else

  @req.ISO-07 @instances.two @critical
  Scenario: People on different instances never receive each other's events, and each person's reach all their devices
    Given Alice and Bob have accounts on the Pro plan
    And Alice is connected from her laptop through the first instance
    And Alice is connected from her phone through the second instance
    And Bob is connected from his laptop through the second instance
    And Bob is connected from his phone through the first instance
    When Alice starts a thread "Family budget" on her laptop for all her devices
    And Alice writes "Rent is due on Friday" in the thread from her laptop
    And Bob asks his agent "How much did I spend on travel?" from his laptop
    Then Alice's phone receives "Rent is due on Friday" in the thread
    And Bob's laptop receives the agent's full answer
    And Alice receives nothing that belongs to Bob
    And Bob receives nothing that belongs to Alice
