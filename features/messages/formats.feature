@area.MSG
Feature: Every client gets precise, documented answers

  Apps and integrations depend on the shape of every answer. Replies say which message they
  answer, mistakes are named precisely, and a mistake does not cost the client its socket.

  Background:
    Given Alice has an account on the Free plan
    And Alice is connected from her laptop

  @req.MSG-01 @normal
  Scenario: Replies carry the id of the message they answer
    When Alice's laptop sends a ping with the id "my-ping-1"
    Then Alice's laptop receives a "pong" with the id "my-ping-1"

  @req.MSG-01 @normal
  Scenario: Every event of a run carries the id of the question
    When Alice asks her agent "When is my next invoice due?"
    Then Alice receives the agent's full answer

  @req.MSG-03 @normal
  Scenario Outline: A malformed message gets a documented error and the socket stays usable: <case>
    When Alice's laptop sends <message>
    Then Alice's laptop is told "<error>"
    And Alice's laptop is still usable

    Examples: Malformed JSON
      | case          | message                   | error           |
      | bad JSON      | text that is not JSON     | invalid_json    |
      | not an object | a JSON list               | invalid_message |
      | binary frame  | a binary frame            | binary_frame    |

  @req.MSG-05 @normal
  Scenario: An older app's message with no documented translation is refused with a documented error
    When Alice's laptop sends a legacy "subscribe" message
    Then Alice's laptop is told "legacy_not_supported"
    And Alice's laptop is still usable

  @req.MSG-04 @normal
  Scenario Outline: A message with a mistake is told what the mistake is: <case>
    When Alice's laptop sends <message>
    Then Alice's laptop is told "<error>" naming "<culprit>"
    And Alice's laptop is still usable

    Examples:
      | case          | message                               | error         | culprit |
      | unknown type  | a message of the unknown type "dance" | unknown_type  | dance   |
      | missing field | a question without any text           | missing_field | text    |

  @req.MSG-05 @normal
  Scenario: An older app's question is translated and answered
    When Alice asks her agent "What changed this month?" the way older apps do
    Then Alice receives the agent's full answer

  @req.MSG-03 @normal
  Scenario: Text that is not valid UTF-8 ends the socket as the WebSocket standard says
    When Alice's laptop sends text that is not valid UTF-8
    Then Alice's laptop is disconnected as "invalid text"
