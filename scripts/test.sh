#!/usr/bin/env bash
# The test command: sets up ./.venv if needed, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile "$@"
