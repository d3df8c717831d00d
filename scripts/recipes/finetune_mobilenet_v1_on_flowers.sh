#!/usr/bin/env bash
# Fine-tunes a MobileNet v1 zoo checkpoint on the Flowers dataset (5 classes):
#   1. slim-download the flowers TFRecords (and the zoo checkpoint unless CHECKPOINT_PATH is set);
#   2. train only the new MobilenetV1/Logits for STEPS_LOGITS steps (rate 0.01), evaluate;
#   3. train all layers from there for STEPS_ALL steps (rate 0.0001), evaluate.
# Expect, from the zoo's ImageNet weights on the full flowers set (350 validation photos):
# mobilenet_v1 at 224 reaches roughly 85-90% after the logits stage, a few points more after
# all layers; the narrow variants (MODEL=mobilenet_v1_025, zoo size IMAGE_SIZE=128) less.
#
#   MODEL=mobilenet_v1_025 IMAGE_SIZE=128 bash scripts/recipes/finetune_mobilenet_v1_on_flowers.sh
# Environment: scripts/recipes/common.sh lists DATASET_DIR, TRAIN_DIR, CHECKPOINT_DIR, MODEL,
# MIRROR, CHECKPOINT_PATH, IMAGE_SIZE and BATCH_SIZE; also STEPS_LOGITS (default 2000) and
# STEPS_ALL (1000).
source "$(dirname "$0")/common.sh"
flowers_finetune_setup mobilenet_v1
finetune_two_stages MobilenetV1/Logits "${STEPS_LOGITS:-2000}" "${STEPS_ALL:-1000}" 0.0001 \
  --learning_rate_decay_type=fixed
