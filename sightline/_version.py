"""The package version, in a module of its own so that any module can read it (run folders and
model files record it) without importing the ``sightline`` package root and its public API."""

__version__ = "0.1.0"
