@area.AUTH
Feature: A handshake that is ambiguous, oversized or malformed opens no socket

  A client proves who it is with exactly one credential, in one of the three documented
  places, in a well-formed upgrade request. Two credentials are ambiguous (whichever the
  service picked, a proxy or a log might pick the other), a token in the address ends up in
  access logs, a cookie is what a page on another site can borrow, and an oversized or
  malformed request is how a stranger ties up the service. Each is refused before any
  socket opens, with a plain answer, at every socket address.

  Background:
    Given Alice has an account on the Free plan

  @req.AUTH-10 @critical
  Scenario Outline: A handshake with the wrong credentials is refused at every address: <attack>
    When an attacker opens a handshake with <attack> for Alice at every address
    Then every attempt is refused with HTTP <status> before any socket opens, saying no more than a plain refusal

    Examples: credentials ambiguous, misplaced or in the wrong form
      | attack                                                     | status |
      | the bearer scheme in capitals carrying a forged token      | 401    |
      | the bearer scheme in small letters carrying a forged token | 401    |
      | extra spaces around a forged bearer token                  | 401    |
      | the Basic scheme carrying her token                        | 401    |
      | her token twice in two Authorization headers               | 401    |
      | two Authorization headers for her and someone else         | 401    |
      | a second credential for someone else                       | 401    |
      | a bearer token and an encoded token for someone else       | 401    |
      | two prefixed subprotocol tokens                            | 401    |
      | her token both prefixed and encoded in the subprotocols    | 401    |
      | the marker protocol alone                                  | 401    |
      | the token prefix without a token                           | 401    |
      | her token in the query string                              | 401    |
      | her token in a cookie alone                                | 401    |
      | bytes that are not ASCII in the Authorization header       | 401    |

    Examples: requests oversized or not an RFC 6455 upgrade
      | attack                                        | status     |
      | a token of 100 KB                             | 431 or 400 |
      | a header of 9 KB beside her token             | 431        |
      | a subprotocol list of 100 KB                  | 431 or 400 |
      | a request line over 8 KB                      | 414        |
      | more than 128 headers                         | 431        |
      | an upgrade in HTTP/1.0 with her token         | 400        |
      | an upgrade without a Sec-WebSocket-Key        | 400        |
      | an upgrade with a malformed Sec-WebSocket-Key | 400        |
      | an upgrade for WebSocket version 8            | 400        |
      | an upgrade without a WebSocket version        | 400        |

  @req.AUTH-10 @normal
  Scenario: After every odd handshake, Alice's own token still opens a socket
    When an attacker opens a handshake with a second credential for someone else for Alice at every address
    Then Alice's own token still opens a socket
