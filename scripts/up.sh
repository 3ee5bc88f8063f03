#!/usr/bin/env bash
# One command for a fresh machine: install, start the local services, run the whole fleet (`scf up`:
# a worker process per core, or `--processes N` / SCF_PROCESSES; one dispatcher and one gateway)
# and register the demo connectors. Ctrl-C stops the fleet gracefully.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_venv fleet
ensure_services
cd "$ROOT"
exec "$VENV/bin/scf" up --connectors "${SCF_CONNECTORS_FILE:-examples/demo-connectors.json}" "$@"
