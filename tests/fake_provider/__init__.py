"""The fake provider server (tests and bench): see ``server.py`` for its control API."""

from tests.fake_provider.client import FakeProvider, start_in_thread

__all__ = ["FakeProvider", "start_in_thread"]
