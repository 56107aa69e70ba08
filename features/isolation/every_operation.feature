@area.ISO
Feature: Every operation keeps each person's data to themselves

  Alice and Bob use the same service from a laptop and a phone each. Whatever Alice does,
  through any operation the service offers (asking her agent, keeping threads, renewing her
  sign-in, calling tools, reading the service's documents), nothing of it reaches Bob, and
  what belongs to one of her devices stays on that device. And whatever names one of her
  things (a thread, her sign-in, her account), when someone else sends it, or her other
  device for what belongs to one device, is answered as if it did not exist and gives
  nothing of hers away.

  The operations are those of the service's published contract; the release report lists
  each one, and says which of them this run exercised while others were listening.

  Background:
    Given Alice and Bob have accounts on the Pro plan
    And Alice is connected from her laptop and phone
    And Bob is connected from his laptop and phone
    And each of their devices has a thread of its own, and each of them one for all their devices

  @req.ISO-08 @critical
  Scenario Outline: Alice <does> from her laptop, and nothing of it reaches Bob or her phone
    When Alice's laptop performs "<operation>" with private data while everyone listens
    Then Bob receives nothing that belongs to Alice
    And Alice's phone receives nothing that belongs to Alice's laptop

    Examples: On the socket
      | operation       | does                                       |
      | chat            | asks her agent a question                  |
      | legacyChat      | asks her agent from an older app           |
      | ping            | checks the line                            |
      | legacyPing      | checks the line from an older app          |
      | fence           | waits for everything sent to her to arrive |
      | reauthenticate  | renews her sign-in on the open connection  |
      | threadCreate    | starts a thread kept to that device         |
      | threadRead      | reads the thread kept to that device                  |
      | threadPost      | writes in the thread kept to that device              |
      | threadSubscribe | follows the thread kept to that device                |
      | threadList      | lists her threads                          |

    Examples: On the tools address
      | operation    | does                           |
      | rpcPing      | checks the tools line          |
      | rpcToolsList | lists the tools she may use    |
      | rpcToolsCall | calls a tool with her question |
      | rpcBatch     | sends several tool requests at once |

    Examples: Over HTTP
      | operation          | does                                         |
      | register           | opens a second account                       |
      | login              | signs in on her tablet                       |
      | refresh            | refreshes her sign-in               |
      | logout             | signs out                      |
      | changePlan         | changes her plan                             |
      | configDocument     | reads the service's published configuration  |
      | securityDocument   | reads the service's published security settings |
      | health             | reads the service's health                   |
      | securityHealth     | reads the service's security health          |

    @operator
    Examples: By the service's operator, who holds its operator credential
      | operation          | does                         |
      | changeEntitlements | has an operator set her plan |

  @req.ISO-08 @critical
  Scenario Outline: <who>'s <device> sending Alice's "<operation>" for her <thing> is answered as if it did not exist
    When <who>'s <device> replays Alice's "<operation>" naming her <thing>
    Then <who>'s <device> is refused with "not_found" and told nothing of Alice's
    And Alice's <thing> holds nothing written by <who>'s <device>

    Examples: Someone else
      | who | device | operation       | thing                     |
      | Bob | laptop | threadRead      | thread kept to the laptop |
      | Bob | laptop | threadPost      | thread kept to the laptop |
      | Bob | laptop | threadSubscribe | thread kept to the laptop |
      | Bob | phone  | threadRead      | thread for all devices    |
      | Bob | phone  | threadPost      | thread for all devices    |
      | Bob | phone  | threadSubscribe | thread for all devices    |

    Examples: Her other device, for what belongs to one device
      | who   | device | operation       | thing                     |
      | Alice | phone  | threadRead      | thread kept to the laptop |
      | Alice | phone  | threadPost      | thread kept to the laptop |
      | Alice | phone  | threadSubscribe | thread kept to the laptop |

  @req.ISO-08 @critical
  Scenario Outline: Bob sending "<operation>" in Alice's name is refused and changes nothing
    When Bob's laptop replays Alice's "<operation>" naming her <thing>
    Then Bob's laptop is refused with "<refusal>" and told nothing of Alice's

    Examples:
      | operation       | thing           | refusal                  |
      | chat            | user id         | forbidden_identity       |
      | legacyChat      | user id         | forbidden_identity       |
      | ping            | user id         | forbidden_identity       |
      | legacyPing      | user id         | forbidden_identity       |
      | fence           | user id         | forbidden_identity       |
      | threadCreate    | user id         | forbidden_identity       |
      | threadRead      | user id         | forbidden_identity       |
      | threadPost      | user id         | forbidden_identity       |
      | threadSubscribe | user id         | forbidden_identity       |
      | threadList      | user id         | forbidden_identity       |
      | reauthenticate  | user id         | forbidden_identity       |
      | reauthenticate  | laptop's token  | reauthentication_refused |
