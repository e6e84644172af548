"""Signed checkpoint envelopes: a JSON header and a payload under one HMAC-SHA256.

Layout (all lengths big-endian)::

    b"RRCK1\\n" | header length (4 bytes) | header JSON | payload | HMAC-SHA256 (32 bytes)

The MAC covers everything before it, magic and length included, so a byte flipped anywhere, a
truncation, a payload moved from another blob or an edited header all fail the
``hmac.compare_digest`` check. ``verify`` checks the MAC before it parses the header and never
unpickles anything: that is the caller's job, on the payload it returns.

>>> key = b"k" * 32
>>> blob = sign(b"payload", {"model_class": "demo.Model"}, key)
>>> header, payload = verify(blob, key)
>>> header["format_version"], header["model_class"], payload
(1, 'demo.Model', b'payload')
>>> verify(blob[:-1] + bytes([blob[-1] ^ 1]), key)
Traceback (most recent call last):
...
riverrun.errors.TamperedCheckpoint: checkpoint MAC mismatch: the blob was modified or signed with another key
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from typing import Any

from riverrun.errors import CheckpointError, ConfigError, TamperedCheckpoint

MAGIC = b"RRCK1\n"
FORMAT_VERSION = 1
MIN_KEY_BYTES = 16
MAX_HEADER_BYTES = 64 * 1024
_LEN = struct.Struct(">I")
_MAC_BYTES = hashlib.sha256().digest_size
_MIN_BLOB = len(MAGIC) + _LEN.size + 2 + _MAC_BYTES  # the smallest header is "{}"


def check_key(key: bytes) -> bytes:
    """Return ``key`` if it is usable for HMAC-SHA256, else raise ``ConfigError`` (without it)."""
    if not isinstance(key, bytes | bytearray):
        raise ConfigError(
            f"checkpoint key must be bytes, not {type(key).__name__}: encode the secret, e.g. secret.encode()"
        )
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"checkpoint key is {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return bytes(key)


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces, UTF-8) for MACs and headers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def mac(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 of the concatenated ``parts``."""
    digest = hmac.new(check_key(key), digestmod=hashlib.sha256)
    for part in parts:
        digest.update(part)
    return digest.digest()


def sign(payload: bytes, header: dict[str, Any], key: bytes) -> bytes:
    """The envelope for ``payload`` with ``header``; the header gains format and payload checks.

    ``header`` must be JSON-serializable; ``format_version``, ``payload_size`` and
    ``payload_sha256`` are set here (and override the caller's values).
    """
    key = check_key(key)
    full = {
        **header,
        "format_version": FORMAT_VERSION,
        "payload_size": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    head = canonical_json(full)
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError(f"checkpoint header is {len(head)} bytes; the limit is {MAX_HEADER_BYTES}")
    body = MAGIC + _LEN.pack(len(head)) + head + bytes(payload)
    return body + mac(key, body)


def verify(blob: bytes, key: bytes) -> tuple[dict[str, Any], bytes]:
    """``(header, payload)`` of a blob made by ``sign`` with ``key``; ``TamperedCheckpoint`` otherwise.

    Order: size, magic, header length, MAC (constant time), then the header is parsed. Nothing is
    unpickled here.
    """
    key = check_key(key)
    blob = bytes(blob)
    if len(blob) < _MIN_BLOB:
        raise TamperedCheckpoint(
            f"checkpoint truncated: {len(blob)} bytes, shorter than the smallest envelope ({_MIN_BLOB})"
        )
    if not blob.startswith(MAGIC):
        raise TamperedCheckpoint("not a riverrun checkpoint: magic bytes mismatch (expected RRCK1)")
    (head_len,) = _LEN.unpack_from(blob, len(MAGIC))
    head_start = len(MAGIC) + _LEN.size
    body_end = len(blob) - _MAC_BYTES
    if head_len > MAX_HEADER_BYTES or head_start + head_len > body_end:
        raise TamperedCheckpoint(
            f"checkpoint garbled or truncated: header length {head_len} does not fit in {len(blob)} bytes"
        )
    body, tag = blob[:body_end], blob[body_end:]
    if not hmac.compare_digest(mac(key, body), tag):
        raise TamperedCheckpoint("checkpoint MAC mismatch: the blob was modified or signed with another key")
    # Authentic from here on; the checks below catch signer bugs, not attackers.
    try:
        header = json.loads(body[head_start : head_start + head_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TamperedCheckpoint(f"checkpoint header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise TamperedCheckpoint("checkpoint header is not a JSON object")
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format_version {header.get('format_version')!r} is not supported "
            f"(this riverrun reads {FORMAT_VERSION})"
        )
    payload = body[head_start + head_len :]
    if header.get("payload_size") != len(payload) or (
        header.get("payload_sha256") != hashlib.sha256(payload).hexdigest()
    ):
        raise TamperedCheckpoint("checkpoint payload does not match the size/sha256 in its header")
    return header, payload
