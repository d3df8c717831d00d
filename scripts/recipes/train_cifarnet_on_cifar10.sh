#!/usr/bin/env bash
# Trains CifarNet from scratch on CIFAR-10, as the original train_cifarnet_on_cifar10.sh did:
# slim-download cifar10, train STEPS steps (default 100,000; batch 128, SGD at 0.1 decayed by
# 0.1 every 200 epochs, weight decay 0.004), then evaluate on the test split.
# Expect: about 85% test accuracy after the full 100,000 steps (many hours on a 2-core CPU;
# lower STEPS to try it).
#
#   DATASET_DIR=/data/cifar10 STEPS=2000 bash scripts/recipes/train_cifarnet_on_cifar10.sh
# Environment: scripts/recipes/common.sh lists DATASET_DIR, TRAIN_DIR, MODEL, MIRROR,
# IMAGE_SIZE and BATCH_SIZE; also STEPS. CHECKPOINT_PATH, when set, warm-starts from it.
source "$(dirname "$0")/common.sh"
MODEL=${MODEL:-cifarnet}
DATASET_NAME=cifar10
DATASET_DIR=${DATASET_DIR:-/tmp/cifar10}
TRAIN_DIR=${TRAIN_DIR:-/tmp/cifarnet-model}
WARM_START=()
if [ -n "${CHECKPOINT_PATH:-}" ]; then WARM_START=("--checkpoint_path=$CHECKPOINT_PATH"); fi

download_dataset cifar10
run slim-train "--model_name=$MODEL" --dataset_name=cifar10 "--dataset_dir=$DATASET_DIR" \
  --dataset_split_name=train "--train_dir=$TRAIN_DIR" "--max_number_of_steps=${STEPS:-100000}" \
  "--batch_size=${BATCH_SIZE:-128}" --save_interval_secs=120 --save_summaries_secs=120 \
  --log_every_n_steps=100 --optimizer=sgd --learning_rate=0.1 \
  --learning_rate_decay_factor=0.1 --num_epochs_per_decay=200 --weight_decay=0.004 \
  "${WARM_START[@]}" "${SIZE_FLAGS_TRAIN[@]}"
EVAL_SPLIT=test evaluate "$TRAIN_DIR"
