@area.PERF
Feature: Many people at once: everyone hears only their own answers, and soon

  Before a release we want to know how the service behaves when many people use it at
  the same moment: each person's conversation stays theirs alone, every message any of
  them receives is checked, and answers keep coming quickly.

  The numbers are the product owner's. Every run asks the small crowd; the release-size
  crowd takes a few minutes and runs when asked for, with `behave -D load=large`.
  The console and the report show what each run measured: how fast people connected,
  how many agent events a second reached them, how long answers took, and any leak.

  @req.PERF-01 @req.ISO-04 @critical
  Scenario Outline: <people> people on the Pro plan ask <questions> private questions each over <period>
    Given <people> people have accounts on the Pro plan
    And each of them is connected from their laptop and phone
    When each of them asks their agent <questions> private questions from their laptop over <period>
    Then nobody receives anything that belongs to someone else
    And each of them receives the agent's full answers to their own questions
    And 99 in 100 answers arrived within 2 seconds

    Examples: every run
      | people | questions | period    |
      | 20     | 5         | 2 seconds |

    @load.large
    Examples: before a release
      | people | questions | period   |
      | 1,000  | 5         | a minute |
