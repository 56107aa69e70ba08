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
