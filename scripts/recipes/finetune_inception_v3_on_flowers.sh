#!/usr/bin/env bash
# Fine-tunes the Inception v3 zoo checkpoint on the Flowers dataset (5 classes), as the
# original finetune_inception_v3_on_flowers.sh did:
#   1. slim-download the flowers TFRecords and inception_v3_2016_08_28.tar.gz (unless
#      CHECKPOINT_PATH is set);
#   2. train only the new InceptionV3/Logits and InceptionV3/AuxLogits for STEPS_LOGITS steps
#      (rate 0.01), evaluate;
#   3. train all layers from there for STEPS_ALL steps (rate 0.0001), evaluate.
# Expect, from the zoo's ImageNet weights on the full flowers set (350 validation photos):
# roughly 85-90% after the logits stage, a little more after all layers. A batch of 32 at 299
# takes several seconds a step on a 2-core CPU: lower STEPS_* or BATCH_SIZE to try it.
#
#   DATASET_DIR=/data/flowers bash scripts/recipes/finetune_inception_v3_on_flowers.sh
# Environment: scripts/recipes/common.sh lists DATASET_DIR, TRAIN_DIR, CHECKPOINT_DIR, MODEL,
# MIRROR, CHECKPOINT_PATH, IMAGE_SIZE and BATCH_SIZE; also STEPS_LOGITS (default 1000) and
# STEPS_ALL (500).
source "$(dirname "$0")/common.sh"
flowers_finetune_setup inception_v3
finetune_two_stages InceptionV3/Logits,InceptionV3/AuxLogits "${STEPS_LOGITS:-1000}" \
  "${STEPS_ALL:-500}" 0.0001 --learning_rate_decay_type=fixed
