@area.LIM
Feature: A client that breaks the WebSocket protocol is disconnected cleanly and harms no one else

  Not every client is a good citizen: a buggy library, a hostile script or a half-written
  integration may send frames the WebSocket standard (RFC 6455) forbids. The service ends
  such a socket with the close code the standard gives for it, takes in its stride the odd
  but legal things a client may do, and keeps serving everyone else on the same instance
  as if nothing had happened. The cases follow the case groups of the Autobahn|TestSuite,
  the reference test suite for WebSocket implementations.

  Background:
    Given Alice and Bob have accounts on the Free plan
    And Bob is connected from his laptop

  @req.LIM-06 @normal
  Scenario Outline: A client that breaks the protocol is disconnected with the code the standard gives: <case>
    When Alice's laptop sends the service <case> (Autobahn <autobahn>)
    Then Alice's laptop is disconnected with close code <close>
    And Bob's laptop is still usable

    Examples:
      | case                                                | autobahn | close |
      | a ping with 126 bytes of payload                    | 2.x      | 1002  |
      | a text frame with the first reserved bit set        | 3.x      | 1002  |
      | a text frame with the second reserved bit set       | 3.x      | 1002  |
      | a text frame with the third reserved bit set        | 3.x      | 1002  |
      | a ping with every reserved bit set                  | 3.x      | 1002  |
      | a close frame with a reserved bit set               | 3.x      | 1002  |
      | a frame with the reserved data opcode 3             | 4.x      | 1002  |
      | a frame with the reserved control opcode 11         | 4.x      | 1002  |
      | a ping split into fragments                         | 5.x      | 1002  |
      | a continuation frame with nothing to continue       | 5.x      | 1002  |
      | a final continuation frame with nothing to continue | 5.x      | 1002  |
      | a new text message while a fragmented one is open   | 5.x      | 1002  |
      | an overlong encoding of a slash                     | 6.x      | 1007  |
      | a surrogate encoded in UTF-8                        | 6.x      | 1007  |
      | a code point beyond U+10FFFF                        | 6.x      | 1007  |
      | a character cut short at the end of a message       | 6.x      | 1007  |
      | a close with the code 1000                          | 7.x      | 1000  |
      | a close with the code 3000                          | 7.x      | 3000  |
      | a close followed by more frames                     | 7.x      | 1000  |
      | a close with a one-byte payload                     | 7.x      | 1002  |
      | a close whose payload is over 125 bytes             | 7.x      | 1002  |
      | a close with invalid UTF-8 in its reason            | 7.x      | 1007  |
      | a close with the code 0                             | 7.x      | 1002  |
      | a close with the code 999                           | 7.x      | 1002  |
      | a close with the code 1005                          | 7.x      | 1002  |
      | a close with the code 1015                          | 7.x      | 1002  |
      | a close with the code 5000                          | 7.x      | 1002  |
      | a frame that announces 2 GB                         | 9.x      | 1009  |

    @req.LIM-05
    Examples: messages the service cannot take (LIM-05 too)
      | case                                                | autobahn | close |
      | invalid UTF-8 in a text frame                       | 6.x      | 1007  |
      | invalid UTF-8 in the second fragment                | 6.x      | 1007  |
      | a message just over the size limit                  | 9.x      | 1009  |
      | a message over the size limit in fragments          | 9.x      | 1009  |

  @req.LIM-06 @normal
  Scenario Outline: A client that bends but keeps the protocol is answered as usual: <case>
    When Alice's laptop sends the service <case> (Autobahn <autobahn>)
    Then Alice's laptop gets every answer and stays connected
    And Bob's laptop is still usable

    Examples:
      | case                                      | autobahn |
      | a text message in one frame               | 1.x      |
      | an empty text message                     | 1.x      |
      | a binary message                          | 1.x      |
      | a ping without payload                    | 2.x      |
      | a ping with 125 bytes of payload          | 2.x      |
      | ten pings in a row                        | 2.x      |
      | an unsolicited pong                       | 2.x      |
      | a text message in two fragments           | 5.x      |
      | a text message one byte per fragment      | 5.x      |
      | a ping between two fragments of a message | 5.x      |
      | a character split across two fragments    | 6.x      |
      | a message exactly at the size limit       | 9.x      |
