#!/usr/bin/env bash
# The main job: sets up ./.venv if needed, then runs the whole walkthrough offline
# (shapes dataset → slim-download → slim-train → slim-eval → slim-export → slim-freeze →
# C++ label_image), printing every command. Extra arguments go to scripts/walkthrough.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python scripts/walkthrough.py "$@"
