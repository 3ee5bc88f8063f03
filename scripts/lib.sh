# Shared steps of scripts/up.sh and scripts/test.sh: a project venv and the local services.
# Sourced, not run. Every step says what it does on stderr.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

say() { printf 'scf-setup: %s\n' "$*" >&2; }

ensure_venv() {  # $1: which lock to install: dev (tests and tools) or fleet (every role and connector)
  local lock="$ROOT/requirements/$1.lock"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv $VENV"
    python3 -m venv "$VENV"
  fi
  say "installing the locked dependencies (requirements/$1.lock) and the project"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$ROOT"
}

pyenv_python() {  # $1: a minor version such as 3.12 -> the newest pyenv interpreter of it, or nothing
  local root
  root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  ls -d "$root"/versions/"$1".*/bin/python 2>/dev/null | sort -V | tail -n1
}

ensure_py_venv() {  # $1: minor version; a venv .venv-$1 with the dev lock, for the unit and contract tests
  local py dir="$ROOT/.venv-$1"
  py="$(pyenv_python "$1")"
  # a pyenv shim is on PATH even where that version is not selected: only an interpreter that runs counts
  if [ -z "$py" ] && command -v "python$1" >/dev/null 2>&1 && "python$1" -c pass 2>/dev/null; then
    py="$(command -v "python$1")"
  fi
  if [ -z "$py" ]; then
    say "Python $1 is not installed (pyenv install $1)"; return 1
  fi
  [ -x "$dir/bin/python" ] || { say "creating virtualenv $dir ($py)"; "$py" -m venv "$dir"; }
  say "installing requirements/dev.lock into $dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements/dev.lock"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$ROOT"
}

apt_install() {  # $@: Debian packages, installed quietly
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_system_packages() {  # what the tests need beyond Python
  if ! command -v tesseract >/dev/null 2>&1; then
    say "installing tesseract-ocr (Debian package, for PDF OCR)"
    apt_install tesseract-ocr
  fi
  if ! command -v promtool >/dev/null 2>&1; then  # only the binary: the package would start a server
    say "installing promtool (from Debian's prometheus package, for the alert rules' tests)"
    local tmp
    tmp="$(mktemp -d)"
    apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus >/dev/null && dpkg -x prometheus_*.deb root)
    install -m 0755 "$tmp/root/usr/bin/promtool" /usr/local/bin/promtool
    rm -rf "$tmp"
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    say "installing chromium (Debian package: the docs pages' headless-browser test)"
    apt_install chromium
  fi
  command -v npm >/dev/null 2>&1 || say "npm not found: the AsyncAPI and KEDA schema tests need it (Debian package npm)"
  # kustomize components need kubectl >= 1.21; Debian's kubernetes-client (1.20) is too old to help
  command -v kubectl >/dev/null 2>&1 || say "kubectl not found: tests/deploy builds deploy/k8s with kubectl kustomize"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # $1 port, $2 name, $3 seconds
  for _ in $(seq 1 "$3"); do port_open "$1" && return 0; sleep 1; done
  say "$2 did not open port $1 within $3 s"; return 1
}

ensure_services() {
  if ! port_open 5432; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    wait_port 5432 PostgreSQL 60
  fi
  if ! port_open 6379; then
    say "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_port 6379 Redis 30
  fi
  if ! port_open 5672; then
    say "starting RabbitMQ"
    rabbitmq-server -detached
    wait_port 5672 RabbitMQ 120
  fi
  if ! port_open 15672; then  # the management API (`scf broker-users`); enabling twice is harmless
    say "enabling the RabbitMQ management plugin"
    rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
    wait_port 15672 "RabbitMQ management" 60
  fi
  say "services up: PostgreSQL :5432, Redis :6379, RabbitMQ :5672 (management :15672)"
}
