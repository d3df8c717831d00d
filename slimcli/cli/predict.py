"""`slim-predict`: Classify images with a frozen graph or a checkpoint (label_image in Python).

    slim-predict --graph=/tmp/frozen.pb --labels=/data/flowers/labels.txt --image=x.jpg
    slim-predict --model_name=inception_v3 --checkpoint_path=/tmp/train --image=x.jpg

Flags: the fields of `slimcli.predict.PredictConfig`.
"""

from __future__ import annotations

from slimcli.cli.base import Command


def _predict(config) -> None:
    from slimcli.predict import format_results, predict
    print(format_results(predict(config), config.labels, config.top_k))


COMMAND = Command("slim-predict",
                  "Classify images with a frozen graph or a checkpoint (label_image in Python).",
                  "slimcli.predict:PredictConfig", _predict)
define_flags, main, run = COMMAND.define_flags, COMMAND.main, COMMAND.run

if __name__ == "__main__":
    run()
