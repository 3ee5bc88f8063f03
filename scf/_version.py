"""The one place the version is written: pyproject.toml reads it, and so do the gateway and the CLI."""

__version__ = "0.2.0"
