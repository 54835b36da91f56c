"""Shared fixtures. Tests talk only to loopback."""

from __future__ import annotations

import os

# Settings must never pick up a developer's .env or real provider keys in tests.
for _name in list(os.environ):
    if _name.startswith("TOKENHUB_"):
        del os.environ[_name]
