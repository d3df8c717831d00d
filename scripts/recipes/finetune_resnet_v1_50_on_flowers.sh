#!/usr/bin/env bash
# Fine-tunes the ResNet V1 50 zoo checkpoint on the Flowers dataset (5 classes), as the
# original finetune_resnet_v1_50_on_flowers.sh did:
#   1. slim-download the flowers TFRecords and resnet_v1_50_2016_08_28.tar.gz (unless
#      CHECKPOINT_PATH is set);
#   2. train only the new resnet_v1_50/logits for STEPS_LOGITS steps (rate 0.01, exponential
#      decay), evaluate;
#   3. train all layers from there for STEPS_ALL steps (rate 0.001), evaluate.
# Expect, from the zoo's ImageNet weights on the full flowers set (350 validation photos):
# roughly 85-90% after the logits stage. The zoo checkpoint has 1000 classes; fine-tuning
# replaces the logits, so flowers needs no --labels_offset.
#
#   DATASET_DIR=/data/flowers bash scripts/recipes/finetune_resnet_v1_50_on_flowers.sh
# Environment: scripts/recipes/common.sh lists DATASET_DIR, TRAIN_DIR, CHECKPOINT_DIR, MODEL,
# MIRROR, CHECKPOINT_PATH, IMAGE_SIZE and BATCH_SIZE; also STEPS_LOGITS (default 3000) and
# STEPS_ALL (1000).
source "$(dirname "$0")/common.sh"
flowers_finetune_setup resnet_v1_50
finetune_two_stages "$MODEL/logits" "${STEPS_LOGITS:-3000}" "${STEPS_ALL:-1000}" 0.001
