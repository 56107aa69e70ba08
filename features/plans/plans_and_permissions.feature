@area.LIM
Feature: Plans differ in what they allow, and a change applies to the next connection

  Each plan buys more connections, more messages a minute, more agent runs a day and more
  tools. A plan change applies from the next connection on; a tool the plan or the
  person's role does not allow is refused, and nothing runs.

  @req.LIM-04 @critical
  Scenario Outline: The <plan> plan allows <connections> connections and <rate> messages a minute
    Given Alice has an account on the <plan> plan
    Then Alice may keep at most <connections> connections open
    And Alice may send at most <rate> messages a minute

    Examples:
      | plan       | connections | rate |
      | Free       | 3           | 30   |
      | Pro        | 5           | 60   |
      | Enterprise | 10          | 120  |

  @req.LIM-04 @critical
  Scenario: Upgrading to Pro takes effect on the next connection
    Given Alice has an account on the Free plan
    When Alice changes to the Pro plan
    And Alice opens 6 tabs on her laptop at the same moment
    Then exactly 5 of Alice's tabs stay connected
    And the others are disconnected as "connection limit"

  @req.LIM-04 @critical
  Scenario: A socket opened before an upgrade keeps the plan it was opened with
    Given Alice has an account on the Free plan
    And Alice is connected from her laptop
    When Alice changes to the Pro plan
    And Alice asks her agent "Search today's news" using the tool "web_search"
    Then Alice is refused the tool because of her plan

  @req.LIM-04 @critical
  Scenario: An Enterprise customer may keep ten connections open
    Given Alice has an account on the Enterprise plan
    And Alice may keep at most 10 connections open
    When Alice opens 11 tabs on her laptop at the same moment
    Then exactly 10 of Alice's tabs stay connected
    And the others are disconnected as "connection limit"

  @req.LIM-04 @critical
  Scenario: Downgrading to Free takes effect on the next connection
    Given Alice has an account on the Pro plan
    When Alice changes to the Free plan
    And Alice opens 5 tabs on her laptop at the same moment
    Then exactly 3 of Alice's tabs stay connected
    And the others are disconnected as "connection limit"

  @req.AGENT-02 @mode.development @critical
  Scenario Outline: A tool the plan or role allows runs: <plan> <role> using <tool>
    Given Alice has an account on the <plan> plan as <role>
    And Alice is connected from her laptop
    When Alice asks her agent "Collect my figures" using the tool "<tool>"
    Then Alice receives the agent's full answer

    Examples:
      | plan       | role   | tool             |
      | Free       | member | knowledge_lookup |
      | Pro        | member | web_search       |
      | Enterprise | admin  | data_export      |

  @req.AGENT-02 @mode.development @critical
  Scenario Outline: A tool the <reason> does not allow is refused and nothing runs: <plan> <role> using <tool>
    Given Alice has an account on the <plan> plan as <role>
    And Alice is connected from her laptop
    When Alice asks her agent "Collect my figures" using the tool "<tool>"
    Then Alice is refused the tool because of her <reason>
    And nothing ran for Alice's question

    Examples:
      | plan       | role   | tool        | reason |
      | Free       | member | web_search  | plan   |
      | Pro        | admin  | data_export | plan   |
      | Enterprise | member | data_export | role   |

  @req.AGENT-03 @critical
  Scenario: Every run is recorded with who ran which agent and tool, where, and how it ended
    Given Alice has an account on the Pro plan
    And Alice is connected from her laptop
    When Alice asks the researcher "Compare last year's prices" using the tool "web_search"
    Then Alice receives the agent's full answer
    And Alice's run is recorded as completed for her laptop, by the researcher with the tool web_search

  @req.AGENT-03 @critical
  Scenario: The Trial plan's daily allowance of agent runs is enforced from the records
    Given Alice has an account on the Trial plan
    And Alice may run the agent 5 times a day
    And Alice is connected from her laptop
    When Alice asks her agent 6 questions, one after another
    Then Alice's last question is refused as "usage_limit_reached" with a hint when to retry

  @req.ROUTE-04 @mode.production @critical
  Scenario: In production nobody gives themselves another plan
    Given Alice has an account on the Free plan
    When Alice tries to move herself to the Enterprise plan
    Then Alice is refused with HTTP 403 "operator_required"
    And the service has an account for Alice on the Free plan

  @req.ROUTE-04 @mode.production @normal
  Scenario: In production the detailed health is the operator's to read
    Given Alice has an account on the Free plan
    When Alice reads the service's security health without an operator's credential
    Then Alice is refused with HTTP 401
