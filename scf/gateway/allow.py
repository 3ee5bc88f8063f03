"""The `Allow` header of a 405: every method the path supports, across all of its routes (RFC 9110 §15.5.6).

Starlette names only the methods of the first route whose path matched, and FastAPI declares one route per
method, so `PUT /connectors/x` and `DELETE /connectors/x` live on different routes: the union is taken here.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

#: The order methods are listed in, so the header reads the same on every answer.
_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """The methods some route serves at this request's path (empty when no route's path matches)."""
    found: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            found.update(getattr(route, "methods", None) or ())
    return sorted(found, key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m))


def allow_header(routes: list[BaseRoute], scope: Scope) -> dict[str, str]:
    methods = allowed_methods(routes, scope)
    return {"Allow": ", ".join(methods)} if methods else {}
