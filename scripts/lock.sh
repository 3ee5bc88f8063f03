#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml's ranges: requirements/dev.lock (CI and scripts/test.sh),
# fleet.lock (scripts/up.sh and the image: every role and connector), client.lock (the slim install).
# Each lock is universal (markers for Python 3.11-3.13). An existing lock's versions are kept unless
# a range excludes them; `bash scripts/lock.sh --upgrade` moves everything to the newest allowed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
UV="$VENV/bin/uv"
[ -x "$UV" ] || "$VENV/bin/python" -m pip install --quiet uv
for spec in dev:dev fleet:all client:; do
  name="${spec%%:*}" extra="${spec#*:}"
  say "locking requirements/$name.lock${extra:+ (extra $extra)}"
  "$UV" pip compile pyproject.toml ${extra:+--extra "$extra"} --universal --python-version 3.11 \
    --no-annotate --custom-compile-command "bash scripts/lock.sh" -o "requirements/$name.lock" -q "$@"
done
