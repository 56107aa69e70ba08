@area.LIM
Feature: No single client can degrade the service or attack it from a browser

  Oversized messages and message floods are cut off before they hurt anyone else, and a
  web page on another site cannot open a socket with a visitor's credentials.

  Background:
    Given Alice and Bob have accounts on the Free plan

  @req.LIM-01 @critical
  Scenario: A message over the size limit is refused
    Given messages may be at most 8 KB
    And Alice is connected from her laptop
    When Alice's laptop sends a message of 9 KB
    Then Alice's laptop is disconnected as "message too big"

  @req.LIM-01 @normal
  Scenario: A message just under the size limit is answered as usual
    Given messages may be at most 8 KB
    And Alice is connected from her laptop
    When Alice asks her agent a question of 7 KB
    Then Alice receives the agent's full answer

  @req.LIM-02 @critical
  Scenario: Past the message rate, Alice is asked to wait, keeps her socket, and Bob is unaffected
    Given Alice may send at most 30 messages a minute
    And Alice is connected from her laptop
    And Bob is connected from his phone
    When Alice asks her agent 31 questions within a minute
    Then Alice's last question is refused as "rate_limited" with a hint when to retry
    And Alice's laptop is still usable
    And Bob can still ask his agent and receive the full answer

  @req.LIM-02 @critical
  Scenario: The message rate is Alice's, counted across all her devices
    Given Alice may send at most 30 messages a minute
    And Alice is connected from her laptop and phone
    When Alice asks her agent 20 questions within a minute from her laptop
    And Alice asks her agent 12 questions within a minute from her phone
    Then Alice's last 2 questions are refused as "rate_limited" with a hint when to retry
    And Alice's phone is still usable

  @req.LIM-02 @req.LIM-04 @critical
  Scenario: A Pro customer's higher message rate is honoured
    Given Carol has an account on the Pro plan
    And Carol may send at most 60 messages a minute
    And Carol is connected from her laptop
    When Carol asks her agent 61 questions within a minute
    Then Carol's last question is refused as "rate_limited" with a hint when to retry

  @req.LIM-03 @critical
  Scenario Outline: A page on another site cannot open a socket: <case>
    When Alice tries to connect from her laptop on a page from <origin>
    Then the handshake is refused with HTTP 403
    And no socket was opened

    Examples:
      | case                | origin                              |
      | another site        | "https://evil.example.net"          |
      | look-alike address  | "https://app.example.com.evil.test" |
      | sandboxed page      | "null"                              |
      | another port        | "https://app.example.com:8443"      |
      | plain http          | "http://app.example.com"            |
      | a subdomain         | "https://evil.app.example.com"      |
      | a prefix look-alike | "https://app.example.co"            |
      | with a path         | "https://app.example.com/"          |

  @req.LIM-03 @normal
  Scenario: The product's own web app may open a socket
    When Alice connects from her laptop on a page from the product's own web app
    Then the socket belongs to Alice's laptop session

  @req.LIM-03 @mode.production @critical
  Scenario: A production service that serves browsers only refuses a handshake without an origin
    Given the service accepts browsers only
    When Alice tries to connect from her laptop without saying which page she is on
    Then the handshake is refused with HTTP 403
