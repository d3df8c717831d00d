"""`slim-eval`: evaluate a checkpoint (or each new one of a training directory) on a split.

    slim-eval --model_name=inception_v3 --checkpoint_path=/tmp/train \
        --dataset_name=flowers --dataset_dir=/data/flowers --dataset_split_name=validation

Flags: the fields of `slimcli.evaluate.EvalConfig`.
"""

from __future__ import annotations

from slimcli.cli.base import Command

DESCRIPTION = ("Evaluate a checkpoint on a dataset split: eval/Accuracy, eval/Recall_5, loss, "
               "per-class accuracy and a confusion matrix; --eval_loop evaluates each new "
               "checkpoint of a training directory.")


def _evaluate(config) -> None:
    from slimcli.evaluate import run_evaluation
    run_evaluation(config)


COMMAND = Command("slim-eval", DESCRIPTION, "slimcli.evaluate:EvalConfig", _evaluate)
define_flags, main, run = COMMAND.define_flags, COMMAND.main, COMMAND.run

if __name__ == "__main__":
    run()
