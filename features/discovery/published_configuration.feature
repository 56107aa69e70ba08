@area.ROUTE
Feature: Clients discover what the service supports

  Front-ends and integrators read the service's published configuration instead of
  guessing: its endpoint, its limits, how to present a token, and whether it is a
  development or a production service.

  @req.ROUTE-02 @normal
  Scenario: The service publishes its endpoint, limits, timings and authentication methods
    When a client reads the service's published configuration
    Then the configuration publishes these settings:
      | setting               |
      | WebSocket endpoint    |
      | connections per user  |
      | message size in bytes |
      | messages per minute   |
      | heartbeat interval    |
      | heartbeat timeout     |
      | handshake timeout     |
      | authentication methods |
      | mode                  |
    And it offers these ways to present a token:
      | carrier              |
      | bearer header        |
      | prefixed subprotocol |
      | encoded subprotocol  |
    And it says whether it runs in development or production mode
