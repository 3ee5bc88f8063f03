"""Pure helpers that decide what is a secret and mask it, for replies, logs, metrics and dead letters.

A value is secret when its key looks like a credential (password, token, secret, api key, ...) or when
it is a URL/DSN carrying a password in its userinfo or a credential in a query/fragment parameter
(`?token=`, `?X-Amz-Signature=`). Masking never fails and never returns the secret.
Everything here sees untrusted text on the event loop, so every scan is linear (no backtracking
pattern) and bounded: a string is scanned up to `MAX_SCANNED_CHARS`, and `redact` visits at most
`MAX_REDACT_NODES` values and `MAX_REDACT_CHARS` characters; what lies past a bound is replaced by a
marker, never left in clear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

MASK = "**********"

#: Longest string masked in full; a longer one is cut there (marked), never returned unscanned.
MAX_SCANNED_CHARS = 64 * 1024
#: `redact`'s budget for one call: values visited, and characters of strings and keys scanned.
MAX_REDACT_NODES = 20_000
MAX_REDACT_CHARS = 1024 * 1024
MAX_REDACT_DEPTH = 32
#: Keys longer than this are treated as secret-bearing (no credential name is that long).
MAX_KEY_CHARS = 1024
#: What stands where redaction stopped (over budget); the rest of a container is dropped.
OVER_BUDGET = "[redacted: too large to inspect]"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization"
    r"|client[_-]?secret|session[_-]?token|cookie|fernet)",
    re.IGNORECASE,
)
# Single-character classes only: each search is one linear pass, with no backtracking.
_SPACE = re.compile(r"\s")
_USER_END = re.compile(r"[:/@\s]")
_WORD_BREAK = re.compile(r"(\s)")
_PARAM_SEPARATORS = re.compile(r"([&#;])")
_QUERY_START = re.compile(r"[?#]")
_MAX_PARAM_NAME = 128
#: URL parameters (libpq keywords, query and fragment names) that hold a secret, beyond `is_secret_key`
#: names; so does any name ending in "signature" (`X-Amz-Signature`: a presigned URL's credential).
SECRET_PARAMS = frozenset(
    {"password", "passwd", "pwd", "pass", "sslpassword", "sslkey", "auth", "key", "sig", "jwt", "assertion"}
)
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def is_secret_key(key: str) -> bool:
    return len(key) > MAX_KEY_CHARS or bool(_SECRET_KEY.search(key))


def param_is_secret(name: str) -> bool:
    if len(name) > _MAX_PARAM_NAME:
        return True
    lowered = name.strip().lower()
    return lowered in SECRET_PARAMS or lowered.endswith(("signature", "_assertion")) or is_secret_key(name)


def mask_query(query: str) -> str:
    """`a=1&password=x#token=y;sig=z`: secret-named parameters masked, in the query and the fragment."""
    pieces = _PARAM_SEPARATORS.split(query)  # a one-character class: linear, no backtracking
    for index in range(0, len(pieces), 2):
        name, sep, value = pieces[index].partition("=")
        if sep and value and param_is_secret(unquote_plus(name)):
            pieces[index] = f"{name}={MASK}"
    return "".join(pieces)


def _mask_url_params(text: str) -> str:
    """Each URL's secret query/fragment parameters masked, wherever a URL sits in free text (one pass
    over whitespace-separated words; only a word holding '://' and then '?' or '#' is looked into)."""
    words = _WORD_BREAK.split(text)
    for index in range(0, len(words), 2):
        word = words[index]
        scheme_end = word.find("://")
        if scheme_end < 0 or "=" not in word:
            continue
        start = _QUERY_START.search(word, scheme_end + 3)
        if start is not None:
            words[index] = word[: start.end()] + mask_query(word[start.end() :])
    return "".join(words)


class _NextIndex:
    """The next position of a pattern at or after a growing start, searched again only when passed.

    Starts only move forward during one masking pass, so every character is searched at most once.
    """

    def __init__(self, text: str, pattern: re.Pattern[str]) -> None:
        self.text = text
        self.pattern = pattern
        self.found = -2  # not searched yet

    def at_or_after(self, start: int) -> int:
        if self.found == -1 or (self.found >= start):
            return self.found
        match = self.pattern.search(self.text, start)
        self.found = match.start() if match else -1
        return self.found


def _has_scheme_before(text: str, end: int, floor: int) -> bool:
    """A scheme (`[a-zA-Z][a-zA-Z0-9+.-]*`) ends at `end`: the run of scheme characters holds a letter."""
    i = end - 1
    while i >= floor and text[i] in _SCHEME_CHARS:
        if text[i].isascii() and text[i].isalpha():
            return True
        i -= 1
    return False


def _mask_scanned(text: str) -> str:
    """Every `scheme://user:password@` with the password masked; one linear pass over `text`."""
    pieces: list[str] = []
    done = 0  # text[:done] is already in pieces
    at = _NextIndex(text, re.compile("@"))
    space = _NextIndex(text, _SPACE)
    search_from = 0
    while (sep := text.find("://", search_from)) != -1:
        search_from = sep + 3
        # The scheme's run cannot reach back past `done` or the previous '://' (':' and '/' end it).
        if not _has_scheme_before(text, sep, done):
            continue
        start = sep + 3
        user_end = _USER_END.search(text, start)
        if user_end is None or text[user_end.start()] != ":":
            continue
        end = at.at_or_after(user_end.start())
        blank = space.at_or_after(user_end.start())
        if end == -1 or (blank != -1 and blank < end):
            continue
        # A password may hold an unencoded '@' (`u:p@ss@h`): mask up to the word's LAST '@', so a careless
        # DSN over-masks rather than leaks. Linear: what lies past that '@' has none, so a later URL in
        # the same word finds its first '@' past the blank and is skipped without another scan.
        end = text.rfind("@", end, blank if blank != -1 else len(text))
        pieces += [text[done : user_end.start() + 1], MASK]
        done = end
        search_from = end + 1
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, dropping a last URL-like word the cut may have split."""
    kept = text[:limit]
    word_start = _after_last_space(kept)
    if ":" in kept[word_start:] or "@" in kept[word_start:]:
        kept = kept[:word_start]
    return f"{kept}[truncated: {len(text)} characters]"


def _after_last_space(text: str) -> int:
    """Where the last word of `text` starts (searched backwards in windows, so linear overall)."""
    end = len(text)
    while end > 0:
        begin = max(0, end - 4096)
        last = max((m.end() for m in _SPACE.finditer(text, begin, end)), default=-1)
        if last != -1:
            return last
        end = begin
    return 0


def mask_url(value: str, *, limit: int = MAX_SCANNED_CHARS) -> str:
    """Replace the password of every `scheme://user:password@` in the text by the mask, and the value of
    every secret-named query or fragment parameter of a URL in it (`?token=`, `#access_token=`).

    Linear in the text; a text longer than `limit` is cut there (and says so) before masking.
    """
    if len(value) > limit:
        value = _cut(value, limit)
    if "://" not in value:
        return value
    masked = _mask_scanned(value)
    return _mask_url_params(masked) if "=" in masked else masked


class _Budget:
    """What one `redact` call may still visit."""

    def __init__(self) -> None:
        self.nodes = MAX_REDACT_NODES
        self.chars = MAX_REDACT_CHARS

    def spend(self, chars: int = 0) -> bool:
        self.nodes -= 1
        self.chars -= chars
        return self.nodes >= 0 and self.chars >= 0


def redact(value: Any, *, key: str | None = None, depth: int = 0) -> Any:
    """Return a copy of `value` with every secret masked (keys by name, URLs by userinfo).

    Bounded: past `MAX_REDACT_DEPTH` levels a value is masked; past the node or character budget the
    rest of each container is replaced by `OVER_BUDGET`. Strings come back encodable as UTF-8.
    """
    if depth > MAX_REDACT_DEPTH:
        return MASK
    if key is not None and is_secret_key(key) and value not in (None, "", {}, []):
        return MASK
    return _redact(value, depth, _Budget())


#: Values returned as they are (nothing in them to mask); checked by exact type, before any ABC check.
_PLAIN_SCALARS = frozenset({int, float, bool, type(None)})
#: Keys up to this length have their verdict (shown name, secret or not) remembered; a key is a pure
#: function of its text, and log lines repeat the same few keys (`event`, `level`, `operation_id`...).
_REMEMBERED_KEY_CHARS = 128


def _key_view(name: str) -> tuple[str, bool]:
    """(the key as shown, the key names a secret)."""
    if len(name) <= _REMEMBERED_KEY_CHARS:
        return _short_key_view(name)
    return encodable(mask_url(name, limit=MAX_KEY_CHARS)), is_secret_key(name)


@lru_cache(maxsize=4096)  # bounded: a hostile stream of new keys costs misses, never memory
def _short_key_view(name: str) -> tuple[str, bool]:
    return encodable(mask_url(name, limit=MAX_KEY_CHARS)), is_secret_key(name)


def _redact(value: Any, depth: int, budget: _Budget) -> Any:
    if depth > MAX_REDACT_DEPTH:
        return MASK
    kind = type(value)
    if kind is str:
        if not budget.spend(min(len(value), MAX_SCANNED_CHARS)):
            return OVER_BUDGET
        # Nothing to mask without '://' (the only way `mask_url` changes a string of its scanned length).
        if len(value) <= MAX_SCANNED_CHARS and value.isascii() and "://" not in value:
            return value
        return encodable(mask_url(value))
    if kind in _PLAIN_SCALARS:
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            name = str(k)
            if not budget.spend(min(len(name), MAX_SCANNED_CHARS)):
                out[OVER_BUDGET] = MASK
                break
            shown, secret = _key_view(name)
            if secret and v not in (None, "", {}, []):
                out[shown] = MASK
            elif depth < MAX_REDACT_DEPTH and type(v) in _PLAIN_SCALARS:
                out[shown] = v  # what `_redact` answers for it, without the call
            else:
                out[shown] = _redact(v, depth + 1, budget)
        return out
    if isinstance(value, list | tuple):
        items: list[Any] = []
        for v in value:
            if not budget.spend():
                items.append(OVER_BUDGET)
                break
            items.append(_redact(v, depth + 1, budget))
        return items
    if isinstance(value, str):  # a str subclass
        if not budget.spend(min(len(value), MAX_SCANNED_CHARS)):
            return OVER_BUDGET
        return encodable(mask_url(value))
    return value


def encodable(text: str) -> str:
    """`text` as valid UTF-8 can carry it: a lone surrogate (from JSON's `\\ud800`) becomes `?`."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
