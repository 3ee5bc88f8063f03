"""A static check that test, bench and script code only destroys what it provably created.

The suite once flushed Redis databases and dropped `user_analytics` on the machine's shared services;
this finds that shape of mistake in source (no network), so it cannot come back. The rule, kept simple:

* FLUSHDB / FLUSHALL (a call or a string) appear only in the named helpers in `FLUSH_HELPERS`, whose
  targets are a private server or a database claimed empty.
* A destructive SQL statement run by a call (`x.execute("DROP TABLE ...")`, also TRUNCATE, DELETE
  FROM, DROP SCHEMA/DATABASE/ROLE/...) must name each target through a placeholder (`{name}`), never a
  literal name, and that name must be minted unique in the same file: an assignment to it (or the
  fixture of that name) uses `uuid`, `unique(`, `token_hex`, `schema_name(`, `create_schema(` or
  `make_table(`, and no assignment gives it a plain string (`TABLE = "csv_sink_target"`).
  `tests/support/pg_schema.py` is the named helper for schemas and marked fixed-name tables.
* `rabbitmqctl(..., "delete_vhost" | "delete_user", name)` and `drop_bucket(name)` (S3: a real MinIO
  may be named by SCF_TEST_MINIO_ENDPOINT) follow the same rule for `name` (`new_bucket(` mints).
* A loop over `scan_iter(...)`/`keys(...)` must not delete what it finds (that deletes a user's keys).
* Shell scripts (scripts/*.sh, .ci/) contain none of FLUSHDB, FLUSHALL, DROP TABLE/SCHEMA/DATABASE, TRUNCATE.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLUSH_HELPERS = frozenset({"tests/support/services.py", "bench/redis_target.py"})
SQL_HELPERS = frozenset({"tests/support/pg_schema.py"})
SELF = frozenset({"tests/support/hygiene.py", "tests/security/test_suite_hygiene.py"})

_DESTRUCTIVE = re.compile(
    r"^\s*(?:DROP\s+(?:TABLE|SCHEMA|DATABASE|SEQUENCE|TYPE|ROLE|INDEX|VIEW|OWNED\s+BY)|TRUNCATE(?:\s+TABLE)?"
    r"|DELETE\s+FROM)\s+(?:IF\s+EXISTS\s+)?(?P<targets>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_TRAILER = re.compile(r"\s+(?:CASCADE|RESTRICT|WHERE|USING|RETURNING)\b.*$", re.IGNORECASE | re.DOTALL)
_UNIQUE = re.compile(r"uuid|unique\(|token_hex|schema_name\(|create_schema\(|make_table\(|new_bucket\(")
_FLUSH = re.compile(r"flush(?:db|all)", re.IGNORECASE)
_SQL_CALLS = frozenset({"execute", "executemany", "fetch", "fetchval", "fetchrow"})
_SHELL_FORBIDDEN = re.compile(r"flushdb|flushall|drop\s+(?:table|schema|database)|truncate\s", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _template(node: ast.expr) -> str | None:
    """The text of a string literal or f-string, with each placeholder written `{expression}`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append("{" + ast.unparse(value.value) + "}")
        return "".join(parts)
    return None


def _key(expression: str) -> str:
    """The name a value is tracked under: `table` for `table`, `table.upper()`; `vhost` for `self.vhost`."""
    parts = re.split(r"[.\[(]", expression.strip())
    return parts[1] if parts[0] == "self" and len(parts) > 1 else parts[0]


def _placeholder_roots(target: str) -> list[str]:
    return [_key(inner) for inner in re.findall(r"\{([^{}]+)\}", target)]


class _Bindings(ast.NodeVisitor):
    """Every value assigned to each name in a file, and what each fixture returns or yields."""

    def __init__(self) -> None:
        self.values: dict[str, list[ast.expr]] = {}
        self.fixtures: dict[str, tuple[str, list[ast.expr]]] = {}  # name -> (source, returned values)

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        for name in ast.walk(target):
            if isinstance(name, ast.Name):
                self.values.setdefault(name.id, []).append(value)
            elif isinstance(name, ast.Attribute):
                self.values.setdefault(name.attr, []).append(value)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._bind(target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._bind(node.target, node.value)
        self.generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if any("fixture" in ast.unparse(d) for d in node.decorator_list):
            returned = [
                n.value
                for n in ast.walk(node)
                if isinstance(n, ast.Return | ast.Yield) and n.value is not None
            ]
            self.fixtures[node.name] = (ast.unparse(node), returned)
        self.generic_visit(node)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def unique_value(self, value: ast.expr, depth: int = 0) -> bool:
        """Does `value` mint a unique name (directly, or from names that are minted unique)?"""
        if _UNIQUE.search(ast.unparse(value)):
            return True
        if isinstance(value, ast.Await):
            return self.unique_value(value.value, depth)
        if isinstance(value, ast.JoinedStr):
            roots = _placeholder_roots(_template(value) or "")
            return bool(roots) and all(self.minted_unique(r, depth + 1) for r in roots)
        if isinstance(value, ast.Name | ast.Attribute | ast.Subscript):
            return self.minted_unique(_key(ast.unparse(value)), depth + 1)
        if isinstance(value, ast.Tuple):
            return all(self.unique_value(e, depth) for e in value.elts)
        return False

    def minted_unique(self, name: str, depth: int = 0) -> bool:
        """`name` gets a unique value somewhere in the file and never a fixed string."""
        if depth > 4:
            return False
        values = self.values.get(name, [])
        fixed = [v for v in values if isinstance(v, ast.JoinedStr) or _template(v) is not None]
        if any(not self.unique_value(v, depth) for v in fixed):
            return False  # somewhere it is a fixed name a user may own too
        if any(self.unique_value(v, depth) for v in values):
            return True
        fixture = self.fixtures.get(name)
        return fixture is not None and (
            bool(_UNIQUE.search(fixture[0])) or any(self.unique_value(v, depth + 1) for v in fixture[1])
        )


def check_python(path: str, source: str) -> list[Finding]:
    """Findings in one Python file (`path` relative to the repository root, for the allow-lists)."""
    tree = ast.parse(source)
    bindings = _Bindings()
    bindings.visit(tree)
    found: list[Finding] = []
    for node in ast.walk(tree):
        if path not in FLUSH_HELPERS:
            if isinstance(node, ast.Attribute) and _FLUSH.fullmatch(node.attr):
                found.append(Finding(path, node.lineno, f"{node.attr}() outside {sorted(FLUSH_HELPERS)}"))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _FLUSH.search(node.value):
                found.append(Finding(path, node.lineno, "a FLUSHDB/FLUSHALL string outside the helpers"))
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Call):
            scanned = ast.unparse(node.iter.func).rsplit(".", 1)[-1]
            deletes = [
                c
                for c in ast.walk(node)
                if isinstance(c, ast.Call) and ast.unparse(c.func).rsplit(".", 1)[-1] in ("delete", "unlink")
            ]
            if scanned in ("scan_iter", "keys") and deletes:
                found.append(Finding(path, node.lineno, "deletes every key a scan finds (a user's too)"))
        if isinstance(node, ast.Call) and node.args:
            found.extend(_check_call(path, node, bindings))
    return found


def _check_call(path: str, node: ast.Call, bindings: _Bindings) -> list[Finding]:
    func = ast.unparse(node.func).rsplit(".", 1)[-1]
    if func == "rabbitmqctl" and _template(node.args[0]) in ("delete_vhost", "delete_user"):
        if len(node.args) < 2 or not isinstance(node.args[1], ast.Name | ast.Attribute):
            return [Finding(path, node.lineno, "rabbitmqctl delete of a name not held in a variable")]
        name = _key(ast.unparse(node.args[1]))
        if not bindings.minted_unique(name):
            return [Finding(path, node.lineno, f"rabbitmqctl delete of {name}: not minted unique")]
        return []
    if func == "drop_bucket":
        name = _key(ast.unparse(node.args[0]))
        if not isinstance(node.args[0], ast.Name | ast.Attribute) or not bindings.minted_unique(name):
            return [
                Finding(path, node.lineno, f"drop_bucket({ast.unparse(node.args[0])}): not minted unique")
            ]
        return []
    sql = _template(node.args[0])
    if func not in _SQL_CALLS or sql is None or path in SQL_HELPERS:
        return []
    match = _DESTRUCTIVE.match(sql)
    if match is None:
        return []
    found = []
    for target in _TRAILER.sub("", match["targets"]).split(","):
        roots = _placeholder_roots(target)
        if not roots:
            found.append(Finding(path, node.lineno, f"destructive SQL on a literal name: {sql.strip()!r}"))
        elif not all(bindings.minted_unique(root) for root in roots):
            found.append(Finding(path, node.lineno, f"{sql.strip()!r}: {roots} not provably minted unique"))
    return found


def check_shell(path: str, source: str) -> list[Finding]:
    return [
        Finding(path, number, f"destructive command in a script: {line.strip()!r}")
        for number, line in enumerate(source.splitlines(), 1)
        if _SHELL_FORBIDDEN.search(line)
    ]


def scan(root: Path = ROOT) -> tuple[list[Finding], int]:
    """Every finding in tests/, bench/, scripts/ and .ci/, and how many files were read."""
    found: list[Finding] = []
    files = 0
    for folder in ("tests", "bench", "scripts", ".ci"):
        for file in sorted((root / folder).rglob("*")):
            relative = file.relative_to(root).as_posix()
            if relative in SELF or not file.is_file():
                continue
            if file.suffix == ".py":
                found.extend(check_python(relative, file.read_text()))
            elif file.suffix == ".sh" or folder == ".ci":
                found.extend(check_shell(relative, file.read_text()))
            else:
                continue
            files += 1
    return found, files
