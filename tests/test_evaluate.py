"""slim-eval end to end on a converted folder dataset, checked against a plain recomputation."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from datasets_helpers import convert_folder, read_examples, write_intensity_classes
from slimcli import nets, slim
from slimcli.cli import download as download_cli
from slimcli.cli import evaluate as eval_cli
from slimcli.datasets import get_dataset
from slimcli.evaluate import confusion_cell_size
from slimcli.preprocessing import get_preprocessing

CLASSES = ("circle", "square", "stripes")


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """3 classes x 9 PNG images of 28x28, converted with the real folder converter."""
    root = tmp_path_factory.mktemp("eval_data")
    images = write_intensity_classes(root / "images", CLASSES, 9, spread=60, step=80)
    return convert_folder(images, root / "records", "--num_validation=11")


def _checkpoint(train_dir, num_classes, step=3, seed=1, extra=None):
    net = nets.get_network_fn("lenet", num_classes)
    net.build([None, 28, 28, 3])
    rng = np.random.RandomState(seed)
    values = {n: (rng.randn(*v.shape) * 0.05).astype(np.float32)
              for n, v in net.variables_dict().items()}
    values.update(extra or {})
    slim.save_checkpoint(values, os.path.join(train_dir, f"model.ckpt-{step}"))
    return values


def _recompute(dataset_dir, values, split="validation"):
    """Top-1 accuracy from a fresh net and plain Python decoding/preprocessing."""
    split_info = get_dataset("folder", split, dataset_dir)
    net = nets.get_network_fn("lenet", split_info.num_classes)
    net.build([None, 28, 28, 3])
    for name, var in net.variables_dict().items():
        var.assign(values[name])
    preprocess = get_preprocessing("lenet", is_training=False)
    correct = total = 0
    for example in read_examples(split_info.files):
        image = tf.io.decode_image(example["image/encoded"][0], channels=3)
        x = preprocess(image, 28, 28)[None]
        logits, _ = net(x)
        correct += int(np.argmax(logits.numpy()) == example["image/class/label"][0])
        total += 1
    return correct / total, total


def _eval(argv):
    with pytest.raises(SystemExit) as exit_info:
        eval_cli.run(["slim-eval", "--model_name=lenet", "--dataset_name=folder",
                      "--dataset_split_name=validation", "--noprogress", *argv])
    return exit_info.value.code


def test_accuracy_equals_a_plain_recomputation(dataset_dir, tmp_path):
    values = _checkpoint(str(tmp_path / "train"), len(CLASSES))
    out = tmp_path / "eval" / "results.json"
    status = _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={tmp_path / 'train'}",
                    f"--eval_dir={tmp_path / 'eval'}", "--batch_size=4",
                    f"--output_json={out}"])
    assert status == 0
    results = json.loads(out.read_text())
    expected, total = _recompute(dataset_dir, values)
    assert total == 11
    assert results["num_examples"] == 11  # 3 batches of 4, the last partial: each example once
    assert results["eval/Accuracy"] == pytest.approx(expected, abs=1e-6)  # float32 of k/11
    assert results["eval/Recall_5"] == pytest.approx(1.0)  # 3 classes: always in the top 5
    assert results["global_step"] == 3
    assert set(results["per_class_accuracy"]) == set(CLASSES)
    png = Image.open(results["confusion_matrix_png"])
    cell = confusion_cell_size(3)
    assert png.size == (3 * cell, 3 * cell)
    assert np.asarray(results["confusion_matrix"]).sum() == 11


def test_max_num_batches_and_moving_average_weights(dataset_dir, tmp_path):
    train = str(tmp_path / "train")
    shadow_seed = _checkpoint(str(tmp_path / "scratch"), len(CLASSES), seed=9)
    raw = _checkpoint(train, len(CLASSES), seed=1,
                      extra={f"{n}/ExponentialMovingAverage": v for n, v in shadow_seed.items()})
    out = tmp_path / "ema.json"
    assert _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={train}",
                  f"--eval_dir={tmp_path / 'e'}", "--moving_average_decay=0.999",
                  f"--output_json={out}"]) == 0
    expected, _ = _recompute(dataset_dir, shadow_seed)
    assert json.loads(out.read_text())["eval/Accuracy"] == pytest.approx(expected)
    del raw
    assert _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={train}",
                  f"--eval_dir={tmp_path / 'e'}", "--batch_size=2", "--max_num_batches=2",
                  f"--output_json={out}"]) == 0
    assert json.loads(out.read_text())["num_examples"] == 4


def test_eval_loop_evaluates_each_checkpoint(dataset_dir, tmp_path):
    train = str(tmp_path / "train")
    _checkpoint(train, len(CLASSES), step=1, seed=1)
    _checkpoint(train, len(CLASSES), step=2, seed=2)
    out = tmp_path / "loop.json"
    assert _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={train}",
                  f"--eval_dir={tmp_path / 'e'}", "--eval_loop", "--eval_interval_secs=0",
                  "--eval_timeout=1", f"--output_json={out}"]) == 0
    assert [r["global_step"] for r in json.loads(out.read_text())] == [1, 2]


def test_mismatched_checkpoint_and_bad_input_are_one_line_errors(dataset_dir, tmp_path, capsys):
    _checkpoint(str(tmp_path / "train"), 2)  # 2 classes; the dataset has 3
    assert _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={tmp_path / 'train'}",
                  f"--eval_dir={tmp_path / 'e'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "LeNet/fc4/weights: checkpoint [1024, 2] vs model [1024, 3]" in err[0]
    assert "--labels_offset" in err[0]
    assert _eval([f"--dataset_dir={tmp_path / 'missing'}",
                  f"--checkpoint_path={tmp_path / 'train'}"]) == 2
    assert "does not exist; run `slim-download" in capsys.readouterr().err
    assert _eval([f"--dataset_dir={dataset_dir}", "--dataset_split_name=test",
                  f"--checkpoint_path={tmp_path / 'train'}"]) == 2
    assert "validation" in capsys.readouterr().err


def test_eval_loop_takes_no_lock_on_a_training_directory_in_use(dataset_dir, tmp_path):
    from slimcli.slim.train_dir import TrainDirLock
    train = str(tmp_path / "train")
    _checkpoint(train, len(CLASSES), step=1)
    with TrainDirLock(train):  # a trainer is writing there
        assert _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={train}",
                      f"--eval_dir={tmp_path / 'e'}", "--eval_loop", "--eval_interval_secs=0",
                      "--eval_timeout=1"]) == 0


def test_missing_variables_and_another_nets_checkpoint_name_a_real_fix(dataset_dir, tmp_path,
                                                                      capsys):
    values = _checkpoint(str(tmp_path / "part"), len(CLASSES))
    del values["LeNet/conv2/weights"]
    slim.save_checkpoint(values, str(tmp_path / "part" / "model.ckpt-3"))
    assert _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={tmp_path / 'part'}",
                  f"--eval_dir={tmp_path / 'e'}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "lacks 1 variable(s): LeNet/conv2/weights" in line
    assert "ignore_missing_vars" not in line and "--model_name" in line
    cifarnet = nets.get_network_fn("cifarnet", len(CLASSES))
    cifarnet.build([None, 32, 32, 3])
    slim.save_checkpoint({n: v.numpy() for n, v in cifarnet.variables_dict().items()},
                         str(tmp_path / "other" / "model.ckpt-5"))
    assert _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={tmp_path / 'other'}",
                  f"--eval_dir={tmp_path / 'e'}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "holds none of the 8 variables of lenet: it is a checkpoint of cifarnet" in line
    assert "Evaluate it with --model_name=cifarnet" in line and "exclude" not in line


def _with_corrupt_record(dataset_dir, target) -> str:
    """A copy of the converted dataset whose validation file ends with an undecodable image."""
    import shutil
    shutil.copytree(dataset_dir, target)
    (path,) = get_dataset("folder", "validation", str(target)).files
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    bad = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"not a png"])),
        "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"png"])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[0]))}))
    with tf.io.TFRecordWriter(path) as writer:
        for record in records + [bad.SerializeToString()]:
            writer.write(record)
    return path


def test_corrupt_record_fails_with_its_place_or_is_skipped_and_counted(dataset_dir, tmp_path,
                                                                      capsys):
    path = _with_corrupt_record(dataset_dir, tmp_path / "records")
    _checkpoint(str(tmp_path / "train"), len(CLASSES))
    common = [f"--dataset_dir={tmp_path / 'records'}", f"--checkpoint_path={tmp_path / 'train'}",
              f"--eval_dir={tmp_path / 'eval'}", "--batch_size=4"]
    assert _eval(common) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("slim-eval: error:")]
    assert error.startswith(f"slim-eval: error: corrupt record 11 of {path}: not a ")
    assert error.endswith("to skip and count corrupt records.") and "--skip_corrupt" in error
    out = tmp_path / "results.json"
    assert _eval([*common, "--skip_corrupt", f"--output_json={out}"]) == 0
    assert "skipped 1 corrupt records" in capsys.readouterr().out
    results = json.loads(out.read_text())
    assert results["skipped_records"] == 1 and results["num_examples"] == 11
    clean = tmp_path / "clean.json"
    assert _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={tmp_path / 'train'}",
                  f"--eval_dir={tmp_path / 'eval2'}", "--batch_size=4",
                  f"--output_json={clean}"]) == 0
    assert results["eval/Accuracy"] == json.loads(clean.read_text())["eval/Accuracy"]


def _event_tags(directory) -> set[str]:
    import glob
    tags = set()
    for path in glob.glob(os.path.join(str(directory), "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_two_clones_agree_with_one_and_summaries_carry_the_original_names(dataset_dir, tmp_path,
                                                                         capsys):
    _checkpoint(str(tmp_path / "train"), len(CLASSES))
    results = {}
    for clones in (1, 2):
        out = tmp_path / f"clones{clones}.json"
        assert _eval([f"--dataset_dir={dataset_dir}", f"--checkpoint_path={tmp_path / 'train'}",
                      f"--eval_dir={tmp_path / f'eval{clones}'}", "--batch_size=2",
                      f"--num_clones={clones}", "--clone_on_cpu", f"--output_json={out}"]) == 0
        results[clones] = json.loads(out.read_text())
    for key in ("eval/Accuracy", "eval/Recall_5", "eval/Loss", "num_examples"):
        assert results[2][key] == pytest.approx(results[1][key], rel=1e-5), key
    printed = capsys.readouterr().out
    assert "  eval/Accuracy = " in printed and "  eval/Recall_5 = " in printed
    assert {"eval/Accuracy", "eval/Recall_5", "eval/Loss", "eval/ConfusionMatrix"} <= \
        _event_tags(tmp_path / "eval1")


def test_no_dataset_dir_and_an_empty_split_are_one_line_errors(tmp_path, capsys):
    assert _eval([f"--checkpoint_path={tmp_path}"]) == 2
    assert "--dataset_dir is required" in capsys.readouterr().err
    root = tmp_path / "images"
    for name in CLASSES:
        os.makedirs(root / name)
        Image.fromarray(np.zeros([28, 28, 3], np.uint8)).save(root / name / "0.png")
    with pytest.raises(SystemExit):
        download_cli.run(["slim-download", "--dataset_name=folder", f"--image_dir={root}",
                          f"--dataset_dir={tmp_path / 'records'}", "--num_validation=0"])
    capsys.readouterr()
    _checkpoint(str(tmp_path / "train"), len(CLASSES))
    assert _eval([f"--dataset_dir={tmp_path / 'records'}",
                  f"--checkpoint_path={tmp_path / 'train'}"]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("slim-eval: error:")]
    assert "validation" in error and "--dataset_split_name" in error


def test_preprocessing_name_overrides_the_nets_own(dataset_dir, tmp_path):
    _checkpoint(str(tmp_path / "train"), len(CLASSES))
    losses = {}
    for name in (None, "lenet", "cifarnet"):
        out = tmp_path / f"{name}.json"
        argv = [f"--dataset_dir={dataset_dir}", f"--checkpoint_path={tmp_path / 'train'}",
                f"--eval_dir={tmp_path / 'e'}", f"--output_json={out}"]
        assert _eval(argv + ([f"--preprocessing_name={name}"] if name else [])) == 0
        losses[name] = json.loads(out.read_text())["eval/Loss"]
    assert losses["lenet"] == losses[None]  # lenet's own preprocessing is lenet
    assert losses["cifarnet"] != pytest.approx(losses[None])
