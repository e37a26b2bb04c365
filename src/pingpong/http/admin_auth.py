"""Admin bearer tokens: known by name and SHA-256 digest, never kept in clear.

``PINGPONG_ADMIN_TOKENS_FILE`` lists ``name:sha256:<hex>`` lines (the digest
of each token: ``printf %s "$TOKEN" | sha256sum``); ``PINGPONG_ADMIN_TOKEN``
is one token, named ``default``. A presented token is hashed and compared
with every digest by ``hmac.compare_digest``: the time taken does not depend
on how much of a token matches, nor on which one does.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TOKENS_FILE_ENV = "PINGPONG_ADMIN_TOKENS_FILE"
TOKEN_ENV = "PINGPONG_ADMIN_TOKEN"  # noqa: S105 - the variable's name
MIN_TOKEN_LENGTH = 16
LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.@-]{0,63}):sha256:([0-9a-f]{64})$")


@dataclass(frozen=True, slots=True)
class Tokens:
    digests: tuple[tuple[str, bytes], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.digests)

    def name_of(self, authorization: str | None) -> str | None:
        """The name of the token an ``Authorization`` header carries, if known."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = None
        for name, known in self.digests:  # every one, whatever matches
            if hmac.compare_digest(digest, known) and found is None:
                found = name
        return found


def load_tokens(env: Mapping[str, str]) -> Tokens:
    """The configured tokens; ValueError naming the faulty line or variable."""
    digests: list[tuple[str, bytes]] = []
    path = env.get(TOKENS_FILE_ENV)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{TOKENS_FILE_ENV}: cannot read {path}: {exc}") from None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = LINE.fullmatch(line)
            if match is None:
                raise ValueError(
                    f"{path}: line {number}: expected name:sha256:<64 lower-case hex> "
                    "(the digest of the token, never the token itself)"
                )
            digests.append((match.group(1), bytes.fromhex(match.group(2))))
    token = env.get(TOKEN_ENV)
    if token:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"{TOKEN_ENV}: a token has at least {MIN_TOKEN_LENGTH} characters")
        digests.append(("default", hashlib.sha256(token.encode()).digest()))
    names = [name for name, _ in digests]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"admin token names must be unique: {', '.join(duplicates)}")
    return Tokens(tuple(digests))
