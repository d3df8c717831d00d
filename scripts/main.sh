#!/usr/bin/env bash
# The main job: sets up ./.venv if needed, then runs the whole walkthrough offline
# (shapes dataset → slim-download → slim-train → slim-eval → slim-export → slim-freeze →
# C++ label_image), printing every command. Extra arguments go to scripts/walkthrough.py.
# TF_CPP_MIN_LOG_LEVEL is left unset so the commands keep TensorFlow's start-up lines off
# the terminal as a user sees them (set it, or pass -v 1, to see those lines).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python scripts/walkthrough.py "$@"
