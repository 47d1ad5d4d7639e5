"""Shared test configuration. Area-specific fixtures live in tests/fixtures_*.py plugins."""

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MPLBACKEND", "Agg")

pytest_plugins = [
    name[:-3]
    for name in sorted(os.listdir(os.path.dirname(__file__)))
    if name.startswith("fixtures_") and name.endswith(".py")
]
pytest_plugins = [f"tests.{n}" for n in pytest_plugins]
