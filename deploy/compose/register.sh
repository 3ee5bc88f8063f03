#!/bin/sh
# The compose `register` service (docker-compose.yml), run once the fleet is healthy: registers the demo
# connectors through the fleet (`scf connector create`, or `update` when one exists already) and makes an
# admin API key for the gateway unless a live one exists. Runs as the fleet's login (SCF_AMQP_URL).
set -eu
umask 077
spec_dir="$(mktemp -d)"
trap 'rm -rf "$spec_dir"' EXIT

# demo_db: the compose `postgres` (its password comes from the environment, never from a file in git)
cat > "$spec_dir/demo_db.json" <<JSON
{
  "service_type": "postgresql",
  "service_name": "demo_db",
  "host": "${POSTGRES_HOST:-postgres}",
  "port": ${POSTGRES_PORT:-5432},
  "database": "${POSTGRES_DB:-demo}",
  "username": "postgres",
  "password": "$POSTGRES_PASSWORD",
  "connection_pool_size": 5,
  "custom_config": {"schema": "public"}
}
JSON
cat > "$spec_dir/demo_csv.json" <<JSON
{"service_type": "csv", "service_name": "demo_csv"}
JSON

for name in demo_db demo_csv; do
  if scf connector get "$name" > /dev/null 2>&1; then
    scf -o json connector update "$spec_dir/$name.json" > /dev/null
    echo "register: $name updated"
  else
    scf -o json connector create "$spec_dir/$name.json" > /dev/null
    echo "register: $name created"
  fi
done

live_admin_key() {
  scf keys list | python -c '
import json, sys, time
keys = json.load(sys.stdin)
now = time.time()
live = [k for k in keys if k["name"] == "compose-admin" and not k["revoked"]
        and (k["expires_at"] is None or k["expires_at"] > now)]
sys.exit(0 if live else 1)'
}

if live_admin_key; then
  echo "register: the API key compose-admin exists (printed when it was made); scf keys create makes another"
else
  echo "register: an admin API key for the gateway, shown ONCE (revoke: scf keys revoke KEY_ID):"
  scf keys create compose-admin --grant '*' | sed -n 's/^key (shown once, store it now): /  export SCF_API_KEY=/p'
  # shellcheck disable=SC2016  # printed for the reader to paste: $SCF_API_KEY expands in their shell
  echo '  curl -s -H "X-API-Key: $SCF_API_KEY" localhost:8306/connectors'
fi
