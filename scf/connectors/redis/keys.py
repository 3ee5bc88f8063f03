"""Key-prefix isolation: every key, channel and SCAN pattern a caller names lives under the prefix.

The prefix is literal and always prepended; in a SCAN pattern its glob characters are escaped, so the
caller's pattern can only ever match inside it. Keys read back lose the prefix before the caller sees
them, and a key that is not valid UTF-8 comes back as `{"$base64": ...}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from scf.connectors.redis.codec import Decoded, decode_text

MAX_KEY_BYTES = 1024
#: Characters that mean something in a Redis glob (`stringmatchlen`): escaped in the prefix.
_GLOB_SPECIAL = frozenset("*?[]\\")
SESSION_SPACE = "session:"


def key_problem(key: str) -> str | None:
    """Why `key` cannot name a key, field or channel (after the prefix), or None when it can."""
    if not key:
        return "must not be empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode"
    if size > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes"
    if "\x00" in key:
        return "holds a NUL character"
    return None


def _checked(key: str) -> str:
    problem = key_problem(key)
    if problem is not None:
        raise ValueError(problem)
    return key


#: A caller's key, hash field, member name or channel, checked by `key_problem`.
Name = Annotated[str, AfterValidator(_checked)]


def escape_glob(text: str) -> str:
    """`text` as a Redis glob that matches exactly itself."""
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)


def pattern_problem(pattern: str) -> str | None:
    """Why a caller's SCAN pattern is refused: it must not end inside an escape (a trailing backslash)."""
    problem = key_problem(pattern)
    if problem is not None:
        return problem
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return "must not end with an unpaired backslash" if trailing % 2 else None


@dataclass(frozen=True)
class KeySpace:
    """One connector's slice of a Redis database: the literal `prefix` before every name."""

    prefix: str

    @property
    def raw_prefix(self) -> bytes:
        return self.prefix.encode("utf-8")

    def key(self, name: str) -> bytes:
        return self.raw_prefix + name.encode("utf-8")

    def keys(self, names: list[str]) -> list[bytes]:
        return [self.key(name) for name in names]

    def channel(self, name: str) -> bytes:
        return self.key(name)

    def session(self, session_id: str) -> bytes:
        return self.key(SESSION_SPACE + session_id)

    def pattern(self, caller_pattern: str) -> bytes:
        """The SCAN MATCH pattern: the escaped prefix, then the caller's glob."""
        return (escape_glob(self.prefix) + caller_pattern).encode("utf-8")

    def owns(self, raw: bytes) -> bool:
        return raw.startswith(self.raw_prefix)

    def strip(self, raw: bytes) -> Decoded:
        """A stored key as the caller named it (without the prefix)."""
        if not self.owns(raw):
            raise ValueError("key outside the connector's prefix")
        return decode_text(raw[len(self.raw_prefix) :])
