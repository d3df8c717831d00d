#!/usr/bin/env bash
# Trains a classifier from scratch on a folder of your own photos in MINUTES (default 10),
# conversion and evaluation included, then prints its validation accuracy:
#
#   bash scripts/recipes/train_from_scratch_on_photos.sh IMAGE_DIR WORK_DIR [MINUTES]
#
# IMAGE_DIR holds one sub-folder of photos per class (IMAGE_DIR/daisy/*.jpg, ...). WORK_DIR gets
# data/ (the TFRecords, 10% of the photos held out for validation), train/ (checkpoints) and
# train/eval/results.json (slim-eval's figures). The steps:
#   1. slim-download --dataset_name=folder converts the photos (skipped when already done);
#   2. slim-train trains the net from scratch until the minutes left run out
#      (--max_train_seconds), with the settings docs/train.md ("Training on your own photos")
#      explains: each photo decoded once at the size the crops need, SGD with momentum on a
#      cosine schedule laid over the time left, label smoothing, batch-norm statistics
#      recomputed at the end;
#   3. slim-eval evaluates the final checkpoint on the held-out photos.
# Environment (optional): MODEL and IMAGE_SIZE (the net and its input size), EVAL_IMAGE_SIZE
# (default: 5/4 of IMAGE_SIZE), BATCH_SIZE,
# LEARNING_RATE, RESERVE_SECONDS (kept for slim-train's start and end and for slim-eval),
# EXTRA_TRAIN_FLAGS (more slim-train flags, after the recipe's: the last of a flag wins).
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 IMAGE_DIR WORK_DIR [MINUTES]" >&2
  exit 2
fi
IMAGE_DIR=$1
WORK_DIR=$2
MINUTES=${3:-10}
START_NS=$(date +%s%N)
MODEL=${MODEL:-mobilenet_v1_025}
IMAGE_SIZE=${IMAGE_SIZE:-128}
# Evaluated at 5/4 of the training size: the training crops (a quarter of the photo or more,
# stretched to IMAGE_SIZE) show things larger than the evaluation's central crop does.
EVAL_IMAGE_SIZE=${EVAL_IMAGE_SIZE:-$((IMAGE_SIZE * 5 / 4))}
source "$(dirname "$0")/common.sh"
DATASET_NAME=folder
DATASET_DIR=$WORK_DIR/data
TRAIN_DIR=$WORK_DIR/train

# elapsed_seconds: seconds since the recipe started.
elapsed_seconds() {
  echo $(( ($(date +%s%N) - START_NS) / 1000000000 ))
}

read -r -a EXTRA <<<"${EXTRA_TRAIN_FLAGS:-}"

run slim-download --dataset_name=folder "--image_dir=$IMAGE_DIR" "--dataset_dir=$DATASET_DIR"

# What is left of the minutes, less what slim-train's start and end and slim-eval take.
TRAIN_SECONDS=$(awk -v m="$MINUTES" -v e="$(elapsed_seconds)" -v r="${RESERVE_SECONDS:-30}" \
  'BEGIN { s = m * 60 - e - r; if (s < 10) s = 10; printf "%d", s }')
run slim-train "--model_name=$MODEL" "--dataset_name=$DATASET_NAME" \
  "--dataset_dir=$DATASET_DIR" --dataset_split_name=train "--train_dir=$TRAIN_DIR" \
  "--train_image_size=$IMAGE_SIZE" "--batch_size=${BATCH_SIZE:-32}" \
  "--max_train_seconds=$TRAIN_SECONDS" --optimizer=momentum --momentum=0.9 \
  "--learning_rate=${LEARNING_RATE:-0.1}" --learning_rate_decay_type=cosine \
  --end_learning_rate=0 --warmup_epochs=1 --label_smoothing=0.1 --weight_decay=0.0001 \
  --min_crop_area=0.25 \
  --batch_norm_decay=0.99 --recompute_batch_norm_stats=20 --decode_side=auto \
  --save_interval_secs=600 --save_summaries_secs=600 --log_every_n_steps=100 "${EXTRA[@]}"
evaluate "$TRAIN_DIR"

PYTHON=${SLIM_BIN:+${SLIM_BIN}python}
"${PYTHON:-python3}" - "$TRAIN_DIR/eval/results.json" "$(elapsed_seconds)" <<'EOF'
import json
import sys

results = json.load(open(sys.argv[1]))
print(f"\nvalidation accuracy: {100 * results['eval/Accuracy']:.1f}% of "
      f"{results['num_examples']} photos, after {int(sys.argv[2]) / 60:.1f} minutes in all "
      f"(step {results['global_step']})")
EOF
