"""The tickdesk version (single source, read by packaging and the server)."""

__version__ = "0.1.0"
