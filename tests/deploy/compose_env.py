"""Docker Compose's variable interpolation (`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`,
`${VAR?err}`, `$$`), enough to render docker-compose.yml with an .env file the way `docker compose` does
before it validates: a required variable that is unset (or empty, for `:?`) is an error."""

from __future__ import annotations

import re
from pathlib import Path

VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


class MissingVariableError(Exception):
    pass


def names(text: str) -> set[str]:
    return {m["name"] for m in VARIABLE.finditer(text) if m["name"]}


def interpolate(text: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match["name"]
        if name is None:
            return "$"
        value, op, arg = env.get(name), match["op"], match["arg"]
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op is not None and op.endswith("?") and unset_or_empty:
            raise MissingVariableError(f"{name}: {arg}")
        if op is not None and op.endswith("-") and unset_or_empty:
            return str(arg)
        return value or ""

    return VARIABLE.sub(one, text)


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env
