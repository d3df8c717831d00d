#!/usr/bin/env bash
# The test command: sets up ./.venv if needed, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=2
# Three workers on two cores: many tests wait (subprocesses starting TensorFlow, checkpoints
# written and read), and a third worker fills those gaps (measured on a fresh clone, 2 cores:
# pytest 625 s against 669 s with two). --no-loadscope-reorder: files go to the workers in
# the order of tests/conftest.py (the longest first), not by their number of tests.
exec .venv/bin/python -m pytest -q -n 3 --dist loadfile --no-loadscope-reorder "$@"
