"""Labels out of range (issue 20, finding 1): a dataset.json that says 2 classes over labels 0..3.

Before, slim-train trained on it with exit 0 (the loss exploding) and slim-eval died with a
TensorFlow traceback. The pipeline's block check now stops both with a one-line error that names
the record, the label and the class count.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from slimcli import nets, slim
from slimcli.cli import evaluate as eval_cli
from slimcli.cli import train as train_cli
from slimcli.datasets.spec import write_descriptor
from slimcli.input import DecodedCache, build_input_pipeline
from slimcli.preprocessing import get_preprocessing
from test_input_pipeline import make_example, pattern_image, write_records

RECORDS = 16  # labels 0, 1, 2, 3, 0, 1, ...: records 2, 3, 6, 7, ... are out of range
OUT_OF_RANGE = (r"record \d+ of .*mnist_(train|test)\.tfrecord has image/class/label=[23], out "
                r"of range for 2 classes: labels must be below labels_offset \+ num_classes = "
                r"0 \+ 2\. Set --labels_offset to match the labels, or correct the dataset(\\)?'s "
                r"class count \(num_classes in its dataset.json\)")


@pytest.fixture(scope="module")
def two_class_dir(tmp_path_factory):
    """An "mnist" directory whose dataset.json says 2 classes; its records hold labels 0..3."""
    directory = str(tmp_path_factory.mktemp("labels"))
    splits = {}
    for split in ("train", "test"):
        records = [make_example(pattern_image(i, 28, 28), b"png", i % 4) for i in range(RECORDS)]
        write_records(os.path.join(directory, f"mnist_{split}.tfrecord"), records)
        splits[split] = {"num_samples": RECORDS, "files": [f"mnist_{split}.tfrecord"]}
    write_descriptor(directory, {"name": "mnist", "num_classes": 2, "splits": splits})
    return directory


def _files(directory, split="train"):
    return [os.path.join(directory, f"mnist_{split}.tfrecord")]


def _first_batches(dataset, count=4):
    return [labels.numpy().tolist() for _, labels in dataset.take(count)]


@pytest.mark.parametrize("decoded_cache_mb", [None, 0], ids=["decoded_in_memory", "streamed"])
def test_training_pipeline_stops_at_the_first_label_out_of_range(two_class_dir, caplog,
                                                                 decoded_cache_mb):
    caplog.set_level(logging.INFO, "slimcli.input")
    dataset = build_input_pipeline(_files(two_class_dir), get_preprocessing("lenet", True), 4,
                                   28, is_training=True, seed=0, num_classes=2,
                                   decoded_cache_mb=decoded_cache_mb,
                                   decoded_cache=DecodedCache())
    with pytest.raises(tf.errors.InvalidArgumentError, match=OUT_OF_RANGE):
        _first_batches(dataset)
    if decoded_cache_mb is None:  # decoded into memory, then handed back to the stream's check
        assert [r.getMessage() for r in caplog.records if r.name == "slimcli.input"][-1] == (
            "reading the records as a stream (not decoding them into memory): a record has a "
            "label not below labels_offset + num_classes")


def test_evaluation_pipeline_names_the_first_record_out_of_range(two_class_dir):
    dataset = build_input_pipeline(_files(two_class_dir, "test"), get_preprocessing("lenet"), 16,
                                   28, is_training=False, num_classes=2)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"record 2 of .*mnist_test\.tfrecord has image/class/label=2,"):
        _first_batches(dataset)


def test_labels_in_range_pass_and_without_num_classes_nothing_is_checked(two_class_dir):
    four = build_input_pipeline(_files(two_class_dir, "test"), get_preprocessing("lenet"), 16,
                                28, is_training=False, num_classes=4)
    assert sorted(_first_batches(four)[0]) == sorted(i % 4 for i in range(RECORDS))
    shifted = build_input_pipeline(_files(two_class_dir, "test"), get_preprocessing("lenet"), 16,
                                   28, is_training=False, labels_offset=0)
    assert max(_first_batches(shifted)[0]) == 3


def _one_line_error(capsys, prog: str) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(lines), lines
    assert "\\'" not in errors[0]  # TensorFlow's escaping of quotes is undone
    return errors[0]


def test_slim_train_exits_2_with_one_line(two_class_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_cli.run(["slim-train", "--model_name=lenet", "--dataset_name=mnist",
                       f"--dataset_dir={two_class_dir}", f"--train_dir={tmp_path / 'train'}",
                       "--batch_size=4", "--max_number_of_steps=3", "--optimizer=sgd",
                       "--save_summaries_secs=0", "--seed=1"])
    assert exit_info.value.code == 2
    assert re.fullmatch(f"slim-train: error: {OUT_OF_RANGE}", _one_line_error(capsys,
                                                                             "slim-train"))


def test_slim_eval_exits_2_with_one_line(two_class_dir, tmp_path, capsys):
    net = nets.get_network_fn("lenet", 2)
    net.build([None, 28, 28, 3])
    rng = np.random.RandomState(0)
    slim.save_checkpoint({n: (rng.randn(*v.shape) * 0.05).astype(np.float32)
                          for n, v in net.variables_dict().items()},
                         str(tmp_path / "train" / "model.ckpt-1"))
    with pytest.raises(SystemExit) as exit_info:
        eval_cli.run(["slim-eval", "--model_name=lenet", "--dataset_name=mnist",
                      f"--dataset_dir={two_class_dir}", "--dataset_split_name=test",
                      f"--checkpoint_path={tmp_path / 'train'}", f"--eval_dir={tmp_path / 'e'}",
                      "--batch_size=4", "--noprogress"])
    assert exit_info.value.code == 2
    assert re.fullmatch(f"slim-eval: error: {OUT_OF_RANGE}", _one_line_error(capsys,
                                                                            "slim-eval"))
