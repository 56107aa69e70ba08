"""How many sockets one instance takes at once (contract section 15).

A slot is taken when a handshake arrives and given back when its socket ends (or the
handshake is refused), so handshakes under way count too: a burst arriving at once can
never take the instance past its capacity. Past it, a handshake is refused with 503
`at_capacity` before anything is looked up, and the sockets already open are untouched.
"""

from __future__ import annotations


class Capacity:
    def __init__(self, max_sockets: int):
        self.max_sockets = max_sockets
        self.taken = 0

    def take(self) -> bool:
        """A slot for one more socket, or False when the instance is full."""
        if self.taken >= self.max_sockets:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        self.taken -= 1
