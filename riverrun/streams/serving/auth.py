"""Bearer tokens of ``riverrun gateway``: who may write (``ingest``: POST /events, /labels) and who
may read (``read``: GET /predictions, /features, /models, and the details of /healthz).

Only the sha256 of a token is configured (``[gateway] tokens`` / ``RIVERRUN_GATEWAY__TOKENS``, or a
``tokens_file``), one grant per line (``;`` separates grants too, for an environment variable)::

    sha256:<64 hex digits> SCOPES [NAME]     # SCOPES: ingest, read or ingest,read

A request's token is hashed and compared with every configured hash by ``hmac.compare_digest``
(no early exit), so neither the token nor which grant matched shows in the timing. Pure: no I/O.

>>> token, line = grant_line(("ingest",), "producer-app", token="rr_example")
>>> line
'sha256:3944ff91afd9897e8b4cbd1cf39ffe676e9a7058600d02660748b9947f682ce4 ingest producer-app'
>>> tokens = Tokens(parse_grants(line, "RIVERRUN_GATEWAY__TOKENS"))
>>> tokens.check("Bearer rr_example", "ingest"), tokens.check("Bearer rr_example", "read")
(200, 403)
>>> tokens.check(None, "ingest"), tokens.check("Bearer wrong", "ingest"), tokens.check("Basic eA==", "read")
(401, 401, 401)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from riverrun.errors import ConfigError

Scope = Literal["ingest", "read"]
SCOPES: tuple[Scope, ...] = ("ingest", "read")
_HASH = re.compile(r"sha256:([0-9a-f]{64})")
_BEARER = re.compile(r"Bearer ([\x21-\x7e]{1,512})", re.IGNORECASE)


def hash_token(token: str) -> str:
    """The configured form of a token: ``sha256:`` and the hex digest of its UTF-8 bytes.

    >>> hash_token("abc")
    'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def grant_line(scopes: Iterable[Scope], name: str = "", token: str | None = None) -> tuple[str, str]:
    """(a new random token, the grant line to configure for it); ``token`` only for examples.

    >>> token, line = grant_line(("ingest", "read"))
    >>> token.startswith("rr_") and len(token) > 40, line.split()[1]
    (True, 'ingest,read')
    """
    wanted = list(dict.fromkeys(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise ConfigError(f"token scopes {wanted} not understood: use ingest, read or ingest,read")
    if name and not re.fullmatch(r"[\w.@-]{1,64}", name):
        raise ConfigError(f"token name {name!r}: use 1-64 of letters, digits, . _ @ -")
    token = token or "rr_" + secrets.token_urlsafe(32)
    return token, " ".join(filter(None, [hash_token(token), ",".join(wanted), name]))


@dataclass(frozen=True)
class Grant:
    """One configured token: its sha256 digest, its scopes and a name for the logs."""

    digest: bytes
    scopes: frozenset[str]
    name: str


def parse_grants(text: str, source: str) -> list[Grant]:
    """Grant lines (``#`` comments, blank lines and ``;`` separators allowed) -> grants; a
    ``ConfigError`` naming ``source`` and the line for anything else (never echoing a value
    that could be a plain token).

    >>> grants = parse_grants("# ops\\n" + "sha256:" + "0" * 64 + " read", "f")
    >>> [(g.scopes == {"read"}, g.name) for g in grants]
    [(True, 'grant-1')]
    >>> parse_grants("rr_secret ingest", "tokens.txt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    riverrun.errors.ConfigError: tokens.txt, grant 1: expected 'sha256:<64 hex digits> SCOPES [NAME]' ...
    """
    grants: list[Grant] = []
    entries = (e.split("#", 1)[0].strip() for line in text.splitlines() for e in line.split(";"))
    for n, entry in enumerate(filter(None, entries), start=1):
        parts = entry.split()
        where = f"{source}, grant {n}"
        match = _HASH.fullmatch(parts[0].lower())
        if match is None or len(parts) not in (2, 3):
            raise ConfigError(
                f"{where}: expected 'sha256:<64 hex digits> SCOPES [NAME]' (configure the hash of a "
                "token, never the token: riverrun gateway token --scope ingest,read prints both)"
            )
        scopes = frozenset(parts[1].split(","))
        if not scopes <= set(SCOPES):
            raise ConfigError(f"{where}: scopes {parts[1]!r} not understood: use ingest, read or ingest,read")
        name = parts[2] if len(parts) == 3 else f"grant-{n}"
        grants.append(Grant(bytes.fromhex(match.group(1)), scopes, name))
    return grants


class Tokens:
    """The configured grants; ``check(authorization_header, scope)`` -> 200, 401 or 403."""

    def __init__(self, grants: Iterable[Grant]):
        self.grants = tuple(grants)

    def __len__(self) -> int:
        return len(self.grants)

    def match(self, authorization: str | None) -> Grant | None:
        """The grant of a ``Bearer`` header's token, or None (missing, malformed or unknown).
        Every grant is compared, in constant time each."""
        found = _BEARER.fullmatch(authorization.strip()) if authorization else None
        if found is None:
            return None
        digest = hashlib.sha256(found.group(1).encode()).digest()
        matched = None
        for grant in self.grants:
            if hmac.compare_digest(digest, grant.digest):
                matched = grant
        return matched

    def check(self, authorization: str | None, scope: Scope) -> Literal[200, 401, 403]:
        """200 when the token grants ``scope``; 401 without a known token; 403 with a known token
        that lacks the scope."""
        grant = self.match(authorization)
        if grant is None:
            return 401
        return 200 if scope in grant.scopes else 403
