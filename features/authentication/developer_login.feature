@area.AUTH
Feature: Developer shortcuts exist only in development

  Developers may connect without a token to a development service. A production service
  refuses every such shortcut, and says which mode it runs in.

  Background:
    Given Alice has an account on the Free plan

  @req.AUTH-07 @mode.development @critical
  Scenario: A developer connects as Alice without a token to a development service
    When a developer connects as Alice without a token
    Then the socket belongs to Alice
    And the service says it runs in development mode

  @req.AUTH-07 @mode.production @critical
  Scenario: A production service refuses the developer login
    When a developer tries to connect as Alice without a token
    Then the handshake is refused with HTTP 401
    And no socket was opened
    And the service says it runs in production mode
