"""Identifier safety: the shape check every table or column name passes before it is looked up or quoted.

Names reach SQL only after `check_identifier` accepted their shape and the catalog confirmed them by
exact match (see `catalog.py`); `quote_ident` then quotes them the way PostgreSQL's own `quote_ident`
does, so even a name the server would fold to lower case keeps its exact spelling.
"""

from __future__ import annotations

import re

from scf.schemas.errors import ErrorCode, PermanentError

#: PostgreSQL truncates identifiers beyond NAMEDATALEN - 1 bytes; a longer name can never match exactly.
MAX_IDENTIFIER_BYTES = 63

# ASCII only on purpose: homoglyphs (Cyrillic letters, fullwidth forms) and invisible characters are refused.
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_PREVIEW_CHARS = 40


def check_identifier(name: object, what: str) -> str:
    """Return `name` when it is a plain identifier; raise `permanent` INVALID_IDENTIFIER otherwise.

    Plain means ASCII letters, digits, `_` and `$`, not starting with a digit or `$`, at most 63 bytes.
    Schema-qualified names (`other.table`) are refused: the schema comes from the connector's config.
    """
    if not isinstance(name, str) or not name:
        raise invalid_identifier(f"{what} must be a non-empty string")
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise invalid_identifier(f"{what} {_preview(name)} is longer than {MAX_IDENTIFIER_BYTES} bytes")
    if _PLAIN_IDENTIFIER.fullmatch(name) is None:
        raise invalid_identifier(
            f"{what} {_preview(name)} is not a plain identifier (ASCII letters, digits, '_' and '$', "
            "not starting with a digit; no schema prefix, quotes or spaces)"
        )
    return name


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL: wrap in double quotes and double any embedded double quote."""
    if "\x00" in name:
        raise invalid_identifier("identifiers cannot contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def qualified_name(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def invalid_identifier(message: str) -> PermanentError:
    return PermanentError(message, code=ErrorCode.INVALID_IDENTIFIER)


def _preview(name: str) -> str:
    shown = name if len(name) <= _PREVIEW_CHARS else name[:_PREVIEW_CHARS] + "..."
    return repr(shown)
