@area.AUTH
Feature: A forged token opens no socket, whatever carries it and wherever it is presented

  Attackers do not stop at a wrong signature. They try every trick of the trade: a token that
  says it needs no signature, a signature borrowed from another token, an algorithm the
  service never offered, a key they chose themselves, claims that are missing or belong to
  someone else. Whichever way the token travels (the Authorization header or either form of
  the subprotocol) and whichever socket address it is presented at, the service refuses it
  before any socket opens, says nothing about why, and never fetches a key from an address
  the token names. One forged token that works would hand an attacker any customer's
  conversations.

  Background:
    Given Alice has an account on the Free plan
    And an attacker runs a key server of their own

  @req.AUTH-11 @critical
  Scenario Outline: A forged token is refused in every carrier at every address: <attack>
    When an attacker presents <attack> for Alice in every carrier at every address
    Then every attempt is refused with HTTP 401 before any socket opens, saying no more than a plain refusal
    And the attacker's key server was never asked for a key

    Examples: the signature and the algorithm
      | attack                                                             |
      | a token that names the algorithm "none"                            |
      | a token that names the algorithm "None"                            |
      | a token that names the algorithm "NONE"                            |
      | a token that names the algorithm "nOnE"                            |
      | a token that names the algorithm "none" and keeps a real signature |
      | a token whose signature is stripped                                |
      | a token with an empty signature                                    |
      | a token with a signature borrowed from another token               |
      | a token whose claims were changed after signing                    |
      | a token signed with HS384 instead of the advertised algorithm      |
      | a token signed with HS512 instead of the advertised algorithm      |
      | a token that claims RS256 with an HMAC signature                   |
      | a token that claims RS256 with a random signature                  |
      | a token that claims ES256 with an HMAC signature                   |
      | a token that claims ES256 with a random signature                  |
      | a token that names no algorithm                                    |
      | a token that names its algorithm in small letters                  |
      | a token signed with the common key "secret"                        |
      | a token signed with the jwt.io example key                         |
      | a token signed with an empty key                                   |
      | a token signed with the old published default key                  |
      | a token signed with the key "password"                             |

    Examples: keys named in the token's header
      | attack                                            |
      | a token whose key id climbs out of the key folder |
      | a token whose key id is an SQL injection          |
      | a token whose key id runs a shell command         |
      | a token whose key id is the attacker's address    |
      | a token that points to the attacker's key set     |
      | a token that points to the attacker's certificate |
      | a token that carries its own secret key           |
      | a token that carries its own public key           |
      | a token with an unknown critical extension        |

    Examples: claims missing, wrong or someone else's
      | attack                                              |
      | a token without an expiry                           |
      | a token that expired a year ago                     |
      | a token that expired a second ago                   |
      | a token whose expiry is not a number                |
      | a token that is not valid until tomorrow            |
      | a token issued tomorrow                             |
      | a token without an issuer                           |
      | a token with another issuer                         |
      | a token whose issuer is part of the real one        |
      | a token whose issuer contains the real one          |
      | a token whose issuer is null                        |
      | a token without an audience                         |
      | a token with another audience                       |
      | a token whose audience is part of the real one      |
      | a token whose audience contains the real one        |
      | a token whose audience is null                      |
      | a token whose issuer is a list holding the real one |
      | a token for a list of other audiences               |
      | a token without a user                              |
      | a token without a session                           |
      | a token without a token id                          |
      | a token whose user is not an id                     |
      | a token whose session is not an id                  |
      | a token for someone who has no account              |
      | a token for someone else's account with her session |
      | a token for her account with someone else's session |
      | a token of a session she signed out of              |
      | her refresh token used as an access token           |

  @req.AUTH-11 @critical
  Scenario: After every forged token, Alice's own token still opens a socket
    When an attacker presents a token that names the algorithm "none" for Alice in every carrier at every address
    Then Alice's own token still opens a socket
