"""Real-browser tests. A package, so its conftest does not shadow tests/conftest.py as module ``conftest``."""
