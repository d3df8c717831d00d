#!/usr/bin/env bash
# Trains LeNet from scratch on MNIST, as the original train_lenet_on_mnist.sh did: slim-download
# mnist, train STEPS steps (default 20,000; batch 50, SGD at a fixed 0.01, no weight decay),
# then evaluate on the test split.
# Expect: about 99% test accuracy after 20,000 steps.
#
#   DATASET_DIR=/data/mnist STEPS=2000 bash scripts/recipes/train_lenet_on_mnist.sh
# Environment: scripts/recipes/common.sh lists DATASET_DIR, TRAIN_DIR, MODEL, MIRROR,
# IMAGE_SIZE and BATCH_SIZE; also STEPS. CHECKPOINT_PATH, when set, warm-starts from it.
source "$(dirname "$0")/common.sh"
MODEL=${MODEL:-lenet}
DATASET_NAME=mnist
DATASET_DIR=${DATASET_DIR:-/tmp/mnist}
TRAIN_DIR=${TRAIN_DIR:-/tmp/lenet-model}
WARM_START=()
if [ -n "${CHECKPOINT_PATH:-}" ]; then WARM_START=("--checkpoint_path=$CHECKPOINT_PATH"); fi

download_dataset mnist
run slim-train "--model_name=$MODEL" --dataset_name=mnist "--dataset_dir=$DATASET_DIR" \
  --dataset_split_name=train "--train_dir=$TRAIN_DIR" "--max_number_of_steps=${STEPS:-20000}" \
  "--batch_size=${BATCH_SIZE:-50}" --learning_rate=0.01 --save_interval_secs=60 \
  --save_summaries_secs=60 --log_every_n_steps=100 --optimizer=sgd \
  --learning_rate_decay_type=fixed --weight_decay=0 "${WARM_START[@]}" "${SIZE_FLAGS_TRAIN[@]}"
EVAL_SPLIT=test evaluate "$TRAIN_DIR"
