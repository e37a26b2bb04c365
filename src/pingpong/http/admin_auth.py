"""Admin bearer tokens: known by name, scope and SHA-256 digest, never kept in clear.

``PINGPONG_ADMIN_TOKENS_FILE`` lists ``name:sha256:<hex>[:scope]`` lines (the
digest of each token: ``printf %s "$TOKEN" | sha256sum``); the scope is
``read`` (inspect, list, top) or ``write`` (reset and override too), and a
line without one is ``write``, as every token was before scopes existed.
``PINGPONG_ADMIN_TOKEN`` is one ``write`` token named ``default``.

The file is followed: its content is checked at most every POLL_SECONDS when
a request asks, and on ``reload()`` (SIGHUP), so a line removed stops
working within POLL_SECONDS. A file that no longer parses grants nothing
until it is fixed: revocation must not wait for a typo to be found.

A presented token is hashed and compared with every digest by
``hmac.compare_digest``: the time taken does not depend on how much of a
token matches, nor on which one does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("pingpong.admin")
TOKENS_FILE_ENV = "PINGPONG_ADMIN_TOKENS_FILE"
TOKEN_ENV = "PINGPONG_ADMIN_TOKEN"  # noqa: S105 - the variable's name
MIN_TOKEN_LENGTH = 16
POLL_SECONDS = 2.0  # as the config file watch
READ, WRITE = "read", "write"
LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.@-]{0,63}):sha256:([0-9a-f]{64})(?::(read|write))?$")


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    digest: bytes
    scope: str = WRITE

    def allows(self, scope: str) -> bool:
        """``write`` includes ``read``."""
        return self.scope == WRITE or scope == READ


def read_tokens_file(path: Path) -> tuple[Token, ...]:
    """The file's tokens; ValueError naming the faulty line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{TOKENS_FILE_ENV}: cannot read {path}: {exc}") from None
    tokens = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.fullmatch(line)
        if match is None:
            raise ValueError(
                f"{path}: line {number}: expected name:sha256:<64 lower-case hex>[:read|:write] "
                "(the digest of the token, never the token itself)"
            )
        name, digest, scope = match.groups()
        tokens.append(Token(name, bytes.fromhex(digest), scope or WRITE))
    return tuple(tokens)


def _unique(tokens: Iterable[Token]) -> tuple[Token, ...]:
    found = tuple(tokens)
    names = [t.name for t in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"admin token names must be unique: {', '.join(duplicates)}")
    return found


class Tokens:
    """The tokens in force: ``fixed`` ones and those of ``path``, followed."""

    def __init__(
        self,
        fixed: Iterable[Token] = (),
        path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fixed = tuple(fixed)
        self._path = path
        self._clock = clock
        self._content: bytes | None = None
        self._checked = clock()
        self._known = _unique(self._fixed)
        if path is not None:
            self._content = _read_bytes(path)
            self._known = _unique((*self._fixed, *read_tokens_file(path)))

    def __bool__(self) -> bool:
        return bool(self._known)

    def find(self, authorization: str | None) -> Token | None:
        """The token an ``Authorization`` header carries, if it is known now."""
        if self._path is not None and self._clock() - self._checked >= POLL_SECONDS:
            self.reload()
        if not authorization:
            return None
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        digest = hashlib.sha256(presented.strip().encode()).digest()
        found = None
        for token in self._known:  # every one, whatever matches
            if hmac.compare_digest(digest, token.digest) and found is None:
                found = token
        return found

    def reload(self) -> None:
        """Re-read the file if its content changed; a file that fails to
        parse leaves only the fixed tokens (logged)."""
        self._checked = self._clock()
        if self._path is None:
            return
        content = _read_bytes(self._path)
        if content == self._content:
            return
        self._content = content
        try:
            self._known = _unique((*self._fixed, *read_tokens_file(self._path)))
        except ValueError as exc:
            self._known = self._fixed
            log.error("admin tokens file refused, its tokens are not accepted until fixed: %s", exc)
            return
        names = ", ".join(f"{t.name} ({t.scope})" for t in self._known)
        log.info("admin tokens reloaded: %s", names or "none")


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def load_tokens(env: Mapping[str, str]) -> Tokens:
    """The configured tokens; ValueError naming the faulty line or variable."""
    fixed = []
    token = env.get(TOKEN_ENV)
    if token:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"{TOKEN_ENV}: a token has at least {MIN_TOKEN_LENGTH} characters")
        fixed.append(Token("default", hashlib.sha256(token.encode()).digest()))
    path = env.get(TOKENS_FILE_ENV)
    return Tokens(fixed, Path(path) if path else None)
