"""One exception root for the project, with a typed subclass per concern."""

from __future__ import annotations


class RiverrunError(Exception):
    """Root of every error raised on purpose by riverrun."""


class ConfigError(RiverrunError):
    """The configuration is wrong; the message says how to fix it."""


class SchemaError(RiverrunError):
    """A record does not match its schema.

    ``reason`` is a short machine-readable category (``invalid_json``, ``validation``, ...),
    the message is for humans.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DeliveryError(RiverrunError):
    """Kafka did not acknowledge a produced message."""


class ServiceUnavailable(RiverrunError):
    """A service (Kafka, Redis) cannot be reached."""
