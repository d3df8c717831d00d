# Shared pieces of the recipes in this folder; each recipe sources it.
#
# Environment every recipe reads (all optional):
#   DATASET_DIR      where the dataset's TFRecords go (or already are)
#   TRAIN_DIR        where checkpoints and event files go
#   CHECKPOINT_DIR   where a zoo checkpoint is unpacked
#   CHECKPOINT_PATH  use this checkpoint instead of downloading the zoo's
#   MODEL            the net (where a variant fits, e.g. mobilenet_v1_025)
#   MIRROR           passed to slim-download --mirror (a local folder or base URL
#                    holding the upstream archive names)
#   IMAGE_SIZE       train/eval image size (default: the net's)
#   EVAL_IMAGE_SIZE  eval image size, where it differs from IMAGE_SIZE
#   BATCH_SIZE       training batch size (default: the original recipe's)
# Commands come from the repository's .venv when it exists, else from PATH.
set -euo pipefail

RECIPE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -x "$RECIPE_ROOT/.venv/bin/slim-train" ]; then
  SLIM_BIN="$RECIPE_ROOT/.venv/bin/"
else
  SLIM_BIN=""
fi
MIRROR_FLAGS=()
if [ -n "${MIRROR:-}" ]; then MIRROR_FLAGS=("--mirror=$MIRROR"); fi
SIZE_FLAGS_TRAIN=()
SIZE_FLAGS_EVAL=()
if [ -n "${IMAGE_SIZE:-}" ]; then
  SIZE_FLAGS_TRAIN=("--train_image_size=$IMAGE_SIZE")
  SIZE_FLAGS_EVAL=("--eval_image_size=$IMAGE_SIZE")
fi
if [ -n "${EVAL_IMAGE_SIZE:-}" ]; then SIZE_FLAGS_EVAL=("--eval_image_size=$EVAL_IMAGE_SIZE"); fi

# run COMMAND ARGS...: prints the command as a user would type it, then runs the slimcli
# command of that name.
run() {
  local shown=("$@")
  printf '\n$'
  printf ' %q' "${shown[@]}"
  printf '\n'
  "${SLIM_BIN}$1" "${@:2}"
}

# download_dataset NAME: converts NAME into $DATASET_DIR unless its labels.txt is there.
download_dataset() {
  if [ -f "$DATASET_DIR/labels.txt" ]; then
    echo "$DATASET_DIR already holds $1 (labels.txt found); not converting it again."
    return
  fi
  run slim-download "--dataset_name=$1" "--dataset_dir=$DATASET_DIR" "${MIRROR_FLAGS[@]}"
}

# zoo_checkpoint NAME: sets CHECKPOINT_PATH, downloading the zoo's NAME when it is unset.
zoo_checkpoint() {
  if [ -n "${CHECKPOINT_PATH:-}" ]; then
    echo "Using CHECKPOINT_PATH=$CHECKPOINT_PATH"
    return
  fi
  local out
  out=$(run slim-download "--checkpoint=$1" "--checkpoint_dir=$CHECKPOINT_DIR" \
    "${MIRROR_FLAGS[@]}")
  echo "$out"
  CHECKPOINT_PATH=$(sed -n 's/^--checkpoint_path=//p' <<<"$out" | head -n 1)
  if [ -z "$CHECKPOINT_PATH" ]; then
    echo "recipe: slim-download --checkpoint=$1 printed no --checkpoint_path" >&2
    exit 1
  fi
}

# evaluate DIR: slim-eval of the latest checkpoint in DIR on $EVAL_SPLIT (validation);
# the metrics also go to DIR/eval/results.json.
evaluate() {
  run slim-eval "--model_name=$MODEL" "--checkpoint_path=$1" "--eval_dir=$1/eval" \
    "--dataset_name=$DATASET_NAME" "--dataset_dir=$DATASET_DIR" \
    "--dataset_split_name=${EVAL_SPLIT:-validation}" "--output_json=$1/eval/results.json" \
    "${SIZE_FLAGS_EVAL[@]}"
}

# finetune_two_stages SCOPES LOGITS_STEPS ALL_STEPS ALL_RATE [slim-train flags...]: the
# original's fine-tuning recipe. Stage 1 trains only SCOPES (not restored from
# $CHECKPOINT_PATH) at learning rate 0.01 into $TRAIN_DIR; stage 2 trains all layers from
# there at ALL_RATE into $TRAIN_DIR/all; each stage is evaluated.
finetune_two_stages() {
  local scopes=$1 logits_steps=$2 all_steps=$3 all_rate=$4
  shift 4
  local common=("--model_name=$MODEL" "--dataset_name=$DATASET_NAME"
                "--dataset_dir=$DATASET_DIR" --dataset_split_name=train
                "--batch_size=${BATCH_SIZE:-32}" --optimizer=rmsprop --weight_decay=0.00004
                --save_interval_secs=60 --save_summaries_secs=60 --log_every_n_steps=100
                "${SIZE_FLAGS_TRAIN[@]}" "$@")
  run slim-train "${common[@]}" "--train_dir=$TRAIN_DIR" "--checkpoint_path=$CHECKPOINT_PATH" \
    "--checkpoint_exclude_scopes=$scopes" "--trainable_scopes=$scopes" \
    "--max_number_of_steps=$logits_steps" --learning_rate=0.01
  evaluate "$TRAIN_DIR"
  run slim-train "${common[@]}" "--train_dir=$TRAIN_DIR/all" "--checkpoint_path=$TRAIN_DIR" \
    "--max_number_of_steps=$all_steps" "--learning_rate=$all_rate"
  evaluate "$TRAIN_DIR/all"
}

# flowers_finetune_setup DEFAULT_MODEL: the shared start of the flowers fine-tuning recipes:
# sets MODEL, DATASET_NAME and the directories, converts flowers and finds the checkpoint.
flowers_finetune_setup() {
  MODEL=${MODEL:-$1}
  DATASET_NAME=flowers
  DATASET_DIR=${DATASET_DIR:-/tmp/flowers}
  TRAIN_DIR=${TRAIN_DIR:-/tmp/flowers-models/$MODEL}
  CHECKPOINT_DIR=${CHECKPOINT_DIR:-/tmp/checkpoints}
  download_dataset flowers
  zoo_checkpoint "$MODEL"
}
