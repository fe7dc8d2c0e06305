"""Payouts tests drive calls like the session tests: a test clock, calls built over HTTP."""

from tests.sessions.conftest import calls, settings

__all__ = ["calls", "settings"]
