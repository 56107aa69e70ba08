@area.MSG
Feature: Integrators use the agent's tools over JSON-RPC

  Integrations talk to the agent's tools through the tools address, in JSON-RPC 2.0, and
  get the standard answers and the standard errors.

  Background:
    Given Alice has an account on the Pro plan
    And Alice connects her tools client from her laptop

  @req.MSG-02 @normal
  Scenario: Alice's tools client calls a tool
    When Alice's tools client calls "knowledge_lookup" with the query "overdue invoices"
    Then the tool's answer quotes "overdue invoices"

  @req.MSG-02 @normal
  Scenario Outline: A bad request gets the standard JSON-RPC error: <case>
    When Alice's tools client sends <request>
    Then it receives the JSON-RPC error <code>

    Examples:
      | case           | request                               | code   |
      | not JSON       | text that is not JSON                 | -32700 |
      | not a request  | a request without a method            | -32600 |
      | empty batch    | an empty batch                        | -32600 |
      | unknown method | a call of the method "weather/today"  | -32601 |
      | bad params     | a tool call without a tool name       | -32602 |

  @req.MSG-02 @normal
  Scenario: A batch is answered in one reply, and notifications are not answered
    When Alice's tools client sends a batch of 2 calls and 1 notification
    Then it receives one reply holding exactly the answers to the 2 calls

  @req.MSG-02 @normal
  Scenario: A notification on its own gets no reply
    When Alice's tools client sends a notification and then a ping
    Then the first reply it receives answers the ping
