@area.SESS
Feature: One person, several devices, each with its own conversation

  People work from a laptop, a phone, a tablet and a desktop app at once. Each device has
  its own session, so what Alice starts on one device stays on that device, and mixed-up
  sessions never confuse her or leak context between devices.

  Background:
    Given Alice has an account on the Enterprise plan

  @req.SESS-01 @critical
  Scenario: Alice connects from four kinds of device at once
    When Alice connects from her laptop, her phone, her desktop app and her tablet
    Then each of Alice's devices has its own session and socket
    And the service records a session for each of Alice's devices

  @req.ISO-05 @critical
  Scenario: The agent's work reaches only the device that asked for it
    Given Alice is connected from her laptop and her phone
    When Alice asks her agent "Draft my resignation letter" from her laptop
    Then Alice's laptop receives the agent's full answer
    And Alice's phone receives nothing from that run
    And the run's events travelled only on the channel of Alice's laptop session

  @req.SESS-02 @req.SESS-03 @critical
  Scenario: Three devices each run three agents at once, and each sees only its own runs
    Given Alice is connected from her laptop, her phone and her tablet
    When each of Alice's devices asks the assistant, the researcher and the planner at the same time
    Then each of Alice's devices receives the full answers of its own three runs and nothing else

  @req.SESS-03 @critical
  Scenario: Nothing the laptop causes reaches the phone
    Given Alice is connected from her laptop and her phone
    When Alice asks her agent "Plan my week" from her laptop
    And Alice starts a thread "Week plan" on her laptop kept to that device
    Then Alice's laptop receives the agent's full answer
    And Alice's phone receives nothing from that run
    And Alice's phone receives nothing that belongs to Alice's laptop

  @req.SESS-04 @critical
  Scenario: A thread kept to the laptop is not seen on the phone
    Given Alice is connected from her laptop and her phone
    When Alice starts a thread "Birthday surprise" on her laptop kept to that device
    Then Alice's laptop can read the thread
    And Alice's phone is told the thread does not exist
    And the service records the thread for Alice's laptop session only

  @req.SESS-04 @critical
  Scenario: A thread for all devices is seen and followed on every device
    Given Alice is connected from her laptop and her phone
    When Alice starts a thread "Holiday plans" on her laptop for all her devices
    And Alice writes "Book the flights" in the thread from her laptop
    Then Alice's phone receives "Book the flights" in the thread
    And Alice's phone can read the thread
    And the service records the thread for all of Alice's sessions
