"""The harness of the specification: actors, recorded connections, checks and services.

Everything here is plain Python, importable and testable without behave. Nothing here
imports the reference backend: the harness meets its target only over HTTP, WebSocket,
PostgreSQL and Redis (see docs/contract.md).
"""

__version__ = "0.1.0"
