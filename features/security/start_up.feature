@area.AUTH
Feature: A production service never starts with a signing secret others know

  Anyone who has read the repository, or a tutorial, knows its example secrets, and with the
  secret anyone can sign tokens that last ten years. So a production instance refuses to
  start with a known default or a secret too short to be safe (RFC 8725, section 3.5), and
  says why in one line; a developer's instance starts, and warns. Starting instances is
  something only the embedded default can do; against another deployment these scenarios
  are skipped.

  @req.AUTH-12 @starts.instances @critical
  Scenario Outline: A production instance refuses to start with a weak signing secret: <case>
    When a production instance is started with <secret>
    Then it refuses to start, saying why in one line

    Examples:
      | case              | secret                                             |
      | a known default   | the signing secret docker-compose.yml once shipped |
      | too short         | a signing secret of 31 bytes                       |

  @req.AUTH-12 @starts.instances @normal
  Scenario: A developer's instance starts with a weak signing secret, and warns
    When a development instance is started with a signing secret of 31 bytes
    Then it starts, with one warning about its signing secret

  @req.AUTH-12 @starts.instances @normal
  Scenario: A production instance with a strong signing secret starts as usual
    When a production instance is started with a random signing secret of 32 bytes
    Then it starts without a complaint
