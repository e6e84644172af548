"""One exception root for the project, with a typed subclass per concern."""

from __future__ import annotations


class RiverrunError(Exception):
    """Root of every error raised on purpose by riverrun."""


class ConfigError(RiverrunError):
    """The configuration is wrong; the message says how to fix it."""


class DeliveryError(RiverrunError):
    """Kafka did not acknowledge a produced message."""


class ServiceUnavailable(RiverrunError):
    """A service (Kafka, Redis) cannot be reached."""


class CheckpointError(RiverrunError):
    """A model checkpoint cannot be stored, found or trusted."""


class TamperedCheckpoint(CheckpointError):
    """A checkpoint failed its integrity check (bad MAC, truncated, garbled, swapped).

    Raised before any byte of the payload is unpickled; the message says why, never the key.
    """


class ForbiddenClass(CheckpointError):
    """A correctly signed checkpoint names a class outside the unpickling allowlist."""


class IncompatibleCheckpoint(CheckpointError):
    """A correctly signed checkpoint was written by a River version whose pickles this install
    cannot read (``registry.compat``); refused before unpickling, the message names both."""


class UnknownVersion(CheckpointError):
    """The requested model version (or pointer) does not exist in the registry."""


class RegistryUnavailable(ServiceUnavailable):
    """The model registry's store (Redis, a directory) cannot be reached or written."""
