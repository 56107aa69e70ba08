@area.ROUTE
Feature: The service answers on every documented address

  Front-ends were built against different addresses over time. Each documented address
  serves the conversation it promises, and the security settings and health are published
  for integrators and operators, without a secret in them.

  Background:
    Given Alice has an account on the Free plan

  @req.ROUTE-01 @normal
  Scenario Outline: Alice chats through <address>
    When Alice connects from her laptop to <address>
    And Alice asks her agent "Summarise my week"
    Then Alice receives the agent's full answer

    Examples:
      | address                               |
      | the main socket address               |
      | her personal socket address           |
      | her versioned personal socket address |

  @req.ROUTE-01 @req.MSG-02 @normal
  Scenario: Alice's tools client reaches the agent's tools
    When Alice connects her tools client from her laptop
    And Alice's tools client asks for the list of tools
    Then the tools include "knowledge_lookup"

  @req.ROUTE-03 @normal
  Scenario: The security settings are published without any secret
    When a client reads the service's published security settings
    Then they name the authentication methods, the allowed origins and the signing algorithms
    And they contain no secret

  @req.ROUTE-03 @normal
  Scenario: Operators see the health of the database, Redis and token verification
    When an operator reads the service's security health
    Then the database, Redis and token verification are reported healthy
