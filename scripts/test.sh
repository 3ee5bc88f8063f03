#!/usr/bin/env bash
# One command for a fresh machine: install with the dev tools, start the local services, then lint,
# type-check and run every test against the real services. CI runs exactly this (.ci/run).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_venv dev
ensure_system_packages
ensure_services
cd "$ROOT"
say "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
say "mypy --strict"
"$VENV/bin/mypy"
# The unit and contract tests on every other supported Python (the full suite runs on 3.11 below).
# Always under CI; locally SCF_TEST_PYTHONS="" skips it, or names the versions to run.
pythons="${SCF_TEST_PYTHONS-3.12 3.13}"
case "${CI:-}" in 1|true|yes) pythons="3.12 3.13" ;; esac
for minor in $pythons; do
  ensure_py_venv "$minor"
  say "pytest tests/unit tests/contract on Python $minor"
  "$ROOT/.venv-$minor/bin/pytest" -q -p no:cacheprovider tests/unit tests/contract
done
say "pytest"
# -ra lists every skipped test with its reason at the end of the run (and xfails, errors, failures).
case " $* " in *" -r"*) ;; *) set -- -ra "$@" ;; esac
exec "$VENV/bin/pytest" "$@"
