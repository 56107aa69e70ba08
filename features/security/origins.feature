@area.LIM
Feature: A page on another site cannot open a socket, however closely its address imitates ours

  A browser sends the socket handshake with the visitor's credentials and says which page
  asked for it. Only the product's own web app may open a socket: an address that merely
  looks like ours, differs in scheme or port, or says nothing at all on a service that
  serves browsers only, is refused before any socket opens, in every carrier and at every
  address. Otherwise any web page a customer visits could read their conversations
  (cross-site WebSocket hijacking).

  Background:
    Given Alice has an account on the Free plan

  @req.LIM-03 @mode.production @critical
  Scenario Outline: A page whose origin is not the product's own is refused: <attack>
    When a page from <attack> opens a socket with Alice's token in every carrier at every address
    Then every attempt is refused with HTTP <status> before any socket opens, saying no more than a plain refusal

    Examples:
      | attack                                          | status     |
      | another site                                    | 403        |
      | a suffix look-alike                             | 403        |
      | a prefix look-alike                             | 403        |
      | a look-alike with a hyphen                      | 403        |
      | a subdomain                                     | 403        |
      | another port                                    | 403        |
      | the default port written out                    | 403        |
      | the http scheme                                 | 403        |
      | the WebSocket scheme                            | 403        |
      | a sandboxed page                                | 403        |
      | the address in capitals                         | 403        |
      | a trailing slash                                | 403        |
      | userinfo before another host                    | 403        |
      | an empty origin                                 | 403        |
      | a comma list that starts with the product's own | 403        |
      | two Origin headers, the product's own first     | 403 or 400 |
      | the product's own origin twice                  | 403 or 400 |
      | no origin on a service for browsers only        | 403        |

  @req.LIM-03 @mode.production @normal
  Scenario: After every look-alike, the product's own web app still opens a socket for Alice
    When a page from a suffix look-alike opens a socket with Alice's token in every carrier at every address
    Then Alice's own token still opens a socket
