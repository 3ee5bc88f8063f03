#!/usr/bin/env bash
# One command for a fresh machine: install with the dev tools, start the local services, then lint,
# type-check and run every test against the real services. CI runs exactly this (.ci/run).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_venv "[dev]"
ensure_system_packages
ensure_services
cd "$ROOT"
say "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
say "mypy --strict"
"$VENV/bin/mypy"
say "pytest"
# -ra lists every skipped test with its reason at the end of the run (and xfails, errors, failures).
case " $* " in *" -r"*) ;; *) set -- -ra "$@" ;; esac
exec "$VENV/bin/pytest" "$@"
