"""Calls tests drive the app like the session tests: a test clock, and calls built over HTTP."""

from tests.sessions.conftest import calls, settings, two_days_of_calls

__all__ = ["calls", "settings", "two_days_of_calls"]
