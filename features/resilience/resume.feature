@area.RES
Feature: A dropped connection picks up where it left off

  Phones lose their connection in tunnels and lifts, laptops go to sleep, networks change.
  When the connection comes back, on whichever server answers, the conversation carries on:
  whatever the agent said meanwhile arrives once and in order, then everything new. If the
  phone was away for longer than the service keeps what it missed, it is told so plainly, so
  the app can reload the conversation instead of showing half of it. And nobody picks up a
  conversation that is not theirs, not even from another of their own devices.

  Background:
    Given Alice has an account on the Free plan

  @req.RES-03 @critical
  Scenario: Back from the tunnel, Alice's phone receives the rest of the answer, once
    Given Alice is connected from her phone
    When Alice's phone loses its connection in a tunnel while her agent answers "Where is my parcel?"
    And Alice's phone reconnects where it left off
    Then Alice's phone receives the rest of the answer, once and in order
    When Alice asks her agent "When will it arrive?" from her phone
    Then Alice's phone receives the agent's full answer

  @req.RES-03 @critical @instances.two
  Scenario: Alice's phone picks up the rest of the answer from the other server
    Given Alice is connected from her phone through the first instance
    When Alice's phone loses its connection in a tunnel while her agent answers "Where is my parcel?"
    And Alice's phone reconnects where it left off through the second instance
    Then Alice's phone receives the rest of the answer, once and in order
    When Alice asks her agent "When will it arrive?" from her phone
    Then Alice's phone receives the agent's full answer

  @req.RES-03 @critical
  Scenario: Away for longer than the service keeps, Alice's phone is told it missed part of the conversation
    Given Alice is connected from her phone
    When Alice's phone loses its connection in a tunnel while her agent says more than the service keeps
    And Alice's phone reconnects where it left off
    Then Alice's phone is told plainly that it missed events the service no longer keeps
    When Alice asks her agent "What did I miss?" from her phone
    Then Alice's phone receives the agent's full answer

  @req.RES-03 @critical
  Scenario Outline: Nobody picks up the conversation of Alice's phone: <who>
    Given Bob has an account on the Free plan
    And Alice is connected from her phone
    When Alice's phone loses its connection in a tunnel while her agent answers "What is my account balance?"
    And <name> connects from <their> laptop where Alice's phone left off
    Then <name>'s laptop is told there is nothing to pick up where Alice's phone left off
    And <name>'s laptop receives none of the events Alice's phone missed

    Examples:
      | who                          | name  | their |
      | another customer             | Bob   | his   |
      | another device of her own    | Alice | her   |
