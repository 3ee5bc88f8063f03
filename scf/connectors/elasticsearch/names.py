"""Name safety: every index name, index pattern and document id passes here before it reaches a URL.

Writes (insert, update, delete, create_index, delete_index) take exactly one concrete index; reads
(search, aggregate, count, list_indices) may name several or use `*` patterns. Remote-cluster
(`cluster:index`) and exclusion (`-index`) syntax is refused everywhere.
"""

from __future__ import annotations

from scf.schemas.configs.elasticsearch import index_name_problem
from scf.schemas.errors import ErrorCode, PermanentError

#: Elasticsearch refuses longer `_id` values.
MAX_ID_BYTES = 512
MAX_TARGETS = 64
_PREVIEW_CHARS = 40


def check_index(name: object, what: str = "parameters.index") -> str:
    """Return `name` when it is one concrete index (or alias) name; raise INVALID_IDENTIFIER otherwise."""
    if not isinstance(name, str):
        raise invalid_identifier(f"{what} must be a string naming one index")
    if "*" in name or "," in name:
        raise invalid_identifier(
            f"{what} {_preview(name)} names several indices; this operation takes exactly one index"
        )
    problem = index_name_problem(name)
    if problem is not None:
        raise invalid_identifier(f"{what} {_preview(name)} {problem}")
    return name


def check_index_target(value: object, what: str = "parameters.index") -> str:
    """Return the comma-joined target of a read: names and `*` patterns, as a list or a comma list."""
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = list(value)
    else:
        raise invalid_identifier(f"{what} must be an index name, a pattern or a list of them")
    if not parts or len(parts) > MAX_TARGETS:
        raise invalid_identifier(f"{what} must name between 1 and {MAX_TARGETS} indices")
    for part in parts:
        # A pattern must be a valid name once each wildcard stands for one ordinary character.
        problem = index_name_problem(part.replace("*", "x"))
        if problem is not None:
            raise invalid_identifier(f"{what} {_preview(part)} {problem}")
    return ",".join(parts)


def check_document_id(value: object, what: str = "parameters.id") -> str:
    """Return a document `_id`: a non-empty string of at most 512 bytes (integers are accepted as text)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise PermanentError(f"{what} must be a non-empty string", code=ErrorCode.INVALID_REQUEST)
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise PermanentError(f"{what} is longer than {MAX_ID_BYTES} bytes", code=ErrorCode.INVALID_REQUEST)
    return value


def invalid_identifier(message: str) -> PermanentError:
    return PermanentError(message, code=ErrorCode.INVALID_IDENTIFIER)


def _preview(name: str) -> str:
    return repr(name if len(name) <= _PREVIEW_CHARS else name[:_PREVIEW_CHARS] + "...")
