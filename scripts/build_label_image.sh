#!/usr/bin/env bash
# Builds the C++ label_image (cc/label_image/main.cc) against the installed TensorFlow wheel.
#
#   scripts/build_label_image.sh [OUTPUT]        # default OUTPUT: bin/label_image
#
# Prints one result line; the compiler's output (warnings included) goes to OUTPUT.build.log.
#
# Environment: PYTHON (the interpreter whose TensorFlow to use; default python3), CXX (g++),
# FORCE_BUILD=1 (rebuild even when OUTPUT is newer than its sources).
# Headers come from tf.sysconfig.get_include(), flags from tf.sysconfig; the binary links
# libtensorflow_cc.so.2 and libtensorflow_framework.so.2 and finds them through an rpath.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CXX=${CXX:-g++}
OUTPUT=${1:-$ROOT/bin/label_image}
SOURCE=$ROOT/cc/label_image/main.cc

if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "build_label_image: error: no C++ compiler '$CXX'; install g++ or set CXX=..." >&2
  exit 1
fi
# The output of the build (TensorFlow's start-up lines, the compiler's warnings) goes to LOG;
# the terminal gets one result line naming it, or the errors when the build fails.
mkdir -p "$(dirname "$OUTPUT")"
LOG="$OUTPUT.build.log"
TF_INFO=$("$PYTHON" - 2>"$LOG" <<'PY'
import os
import tensorflow as tf
print(os.path.dirname(tf.__file__))
print(" ".join(tf.sysconfig.get_compile_flags()))
PY
) || { tail -5 "$LOG" >&2
       echo "build_label_image: error: '$PYTHON' cannot import tensorflow (see $LOG); set PYTHON=..." >&2
       exit 1; }
TF_DIR=$(sed -n 1p <<<"$TF_INFO")
COMPILE_FLAGS=$(sed -n 2p <<<"$TF_INFO")
for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
  if [ ! -e "$TF_DIR/$lib" ]; then
    echo "build_label_image: error: $TF_DIR/$lib not found; this TensorFlow wheel has no C++ library" >&2
    exit 1
  fi
done

# One build at a time per OUTPUT (two test workers, or a test and the walkthrough, may ask at
# once): a second caller waits for the first, then finds the binary up to date.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$OUTPUT.lock"
  flock 9
fi
# Like make: a binary newer than its source, this script and the TensorFlow library is kept.
if [ -x "$OUTPUT" ] && [ "$OUTPUT" -nt "$SOURCE" ] && [ "$OUTPUT" -nt "$0" ] \
    && [ "$OUTPUT" -nt "$TF_DIR/libtensorflow_cc.so.2" ] && [ -z "${FORCE_BUILD:-}" ]; then
  echo "$OUTPUT is up to date (FORCE_BUILD=1 rebuilds it)"
  exit 0
fi
TMP_OUTPUT="$OUTPUT.tmp.$$"
trap 'rm -f "$TMP_OUTPUT"' EXIT
echo "building $OUTPUT with $CXX (a minute or two)..."
# shellcheck disable=SC2086  # COMPILE_FLAGS is a list of flags
if ! "$CXX" -O2 -Wno-deprecated-declarations $COMPILE_FLAGS "$SOURCE" -o "$TMP_OUTPUT" \
    -L"$TF_DIR" -l:libtensorflow_cc.so.2 -l:libtensorflow_framework.so.2 \
    -Wl,-rpath,"$TF_DIR" >>"$LOG" 2>&1; then
  grep -E -A3 "error|undefined reference" "$LOG" | head -40 >&2 || true
  echo "build_label_image: error: $CXX failed; the whole compiler output is in $LOG" >&2
  exit 1
fi
mv "$TMP_OUTPUT" "$OUTPUT"
WARNINGS=$(grep -c "warning:" "$LOG" || true)
echo "built $OUTPUT ($WARNINGS compiler warnings, in $LOG)"
