@area.LIM
Feature: A message that abuses the parser is answered, and the socket stays under the rules

  A hostile client may send text built to trip up a JSON parser: nesting thousands deep,
  characters that are not Unicode, invisible NUL characters, numbers no computer holds,
  keys named twice, or a flood of pings. Each gets the answer the contract documents, the
  socket stays open, and it still lives by every rule: the connection limit, signing out
  and the token's expiry close it as they close any other. A socket that slipped out of
  those rules would let one customer hold the service open past every limit. A message
  over the size limit, in one frame or in fragments, and text that is not UTF-8 close only
  the socket that sent them: see protocol.feature, whose rows for them are LIM-05's too.

  Background:
    Given Alice has an account on the Free plan

  @req.LIM-05 @critical
  Scenario Outline: An abusive message is answered as documented and the socket stays governed: <attack>
    Given Alice is connected from her tablet
    And Alice is connected from her phone
    When each of Alice's devices sends <attack>
    Then each of Alice's devices is answered with <answer> and stays connected
    And Alice's sockets are still closed by the connection limit and on sign-out

    Examples:
      | attack                               | answer                  |
      | 3,000 nested arrays                  | invalid_json            |
      | 1,300 nested objects                 | invalid_json            |
      | a lone high surrogate in a question  | invalid_json            |
      | a lone low surrogate in a question   | invalid_json            |
      | a lone surrogate in a thread title   | invalid_json            |
      | a NUL character in a question        | the agent's full answer |
      | a NUL character in a thread title    | invalid_message         |
      | a NUL character in the message type  | unknown_type            |
      | a number of 5,000 digits             | invalid_json            |
      | a number too large for any float     | a pong                  |
      | a message that names its type twice  | a pong                  |
      | a flood of 500 pings                 | a pong to each          |

  @req.LIM-05 @critical
  Scenario: After every kind of abusive message, Alice's socket still closes when her token expires
    Given Alice is connected from her laptop with a token that expires in 2 seconds
    When Alice's laptop sends every kind of abusive message
    Then Alice's laptop is disconnected as "token expired" within 1 second of the expiry
