"""Free TCP ports for the servers tests start (brokers, Redis, gateways, Bytewax cluster peers)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port nobody listens on: the kernel's choice for ``bind(0)``, released at once.

    The kernel picks it at random from its ephemeral range, so processes starting servers at the
    same time (tests side by side, two crash harnesses) do not draw the same ports."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
