"""Reference backend for the chat specification: Starlette + uvicorn, PostgreSQL, Redis."""

__version__ = "0.1.0"
