"""`slim-train`: train or fine-tune a net of the nets factory on a dataset.

Every flag of the original `train_image_classifier.py`, same names and
defaults, plus the new ones at the end (see docs/train.md). Flags: the fields
of `slimcli.train.TrainConfig`.
"""

from __future__ import annotations

from slimcli.cli.base import Command

DESCRIPTION = """Train or fine-tune a net of the nets factory.

  slim-train --model_name=inception_v3 --dataset_name=flowers --dataset_dir=/data/flowers \\
    --train_dir=/tmp/train --checkpoint_path=inception_v3.ckpt \\
    --checkpoint_exclude_scopes=InceptionV3/Logits,InceptionV3/AuxLogits"""


def _train(config) -> None:
    from slimcli.train import train
    train(config)  # validates the config and makes the strategy, once


COMMAND = Command("slim-train", DESCRIPTION, "slimcli.train:TrainConfig", _train)
define_flags, main, run = COMMAND.define_flags, COMMAND.main, COMMAND.run

if __name__ == "__main__":
    run()
