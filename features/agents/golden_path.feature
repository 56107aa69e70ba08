@area.AGENT
Feature: Ask the agent and watch it work

  This is the product: a person signs in, asks, watches the agent work, and gets an answer.
  If this fails nothing else matters.

  Background:
    Given Alice has an account on the Free plan
    And Alice is connected from her laptop

  @req.AGENT-01 @critical
  Scenario: Alice asks a question and receives the agent's answer
    When Alice asks her agent "Which of my invoices are overdue?"
    Then Alice receives these events for her question, in this order:
      | event           |
      | agent_started   |
      | agent_thinking  |
      | tool_executing  |
      | tool_completed  |
      | agent_completed |
    And Alice's run is recorded as completed for her laptop
