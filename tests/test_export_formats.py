"""SavedModel (float and encoded-image signatures) and TFLite (4 quantization modes)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from export_helpers import encoded_png, restored_net
from slimcli.cli import freeze as freeze_cli
from slimcli.cli.base import run_cli
from slimcli.errors import SlimError
from slimcli.export import ExportConfig, export
from slimcli.freeze import graph_runner, load_graph_def
from slimcli.preprocessing import get_preprocessing

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")

NAME, SIZE, CLASSES = "cifarnet", 32, 10
# int8 (weights and activations) moves the probabilities by up to this much on this
# net; docs/export.md states the same bound.
INT8_PROB_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("formats")
    net, ckpt = restored_net(NAME, str(tmp / "train"))
    images = [encoded_png(SIZE + 8, SIZE + 4, seed) for seed in range(3)]
    with tf.io.TFRecordWriter(str(tmp / "data" / "cifar10_train.tfrecord")) if \
            tf.io.gfile.makedirs(str(tmp / "data")) is None else None as writer:
        for data in images:
            feature = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[data]))}
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    preprocess = get_preprocessing(NAME, is_training=False)
    x = tf.stack([preprocess(tf.io.decode_png(d, channels=3), SIZE, SIZE) for d in images])
    _, end_points = net(x)
    return dict(tmp=tmp, ckpt=ckpt, images=images, x=x.numpy(),
                expected=end_points["Predictions"].numpy())


@pytest.fixture(scope="module")
def saved_model(trained):
    directory = str(trained["tmp"] / "saved_model")
    export(ExportConfig(model_name=NAME, dataset_name="cifar10", checkpoint_path=trained["ckpt"],
                        saved_model_dir=directory))
    return directory


def test_saved_model_signatures_agree(trained, saved_model):
    directory = saved_model
    loaded = tf.saved_model.load(directory)
    floats = loaded.signatures["serving_default"](images=tf.constant(trained["x"]))
    encoded = loaded.signatures["serving_encoded_image"](
        image_bytes=tf.constant(trained["images"]))
    np.testing.assert_allclose(floats["probabilities"], trained["expected"], atol=1e-5)
    np.testing.assert_allclose(encoded["probabilities"], floats["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(encoded["classes"], np.argmax(trained["expected"], -1))


def _run_tflite(path: str, x: np.ndarray) -> np.ndarray:
    interpreter = tf.lite.Interpreter(model_path=path)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    rows = []
    for row in x:
        interpreter.set_tensor(inp["index"], row[np.newaxis])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(rows)


@pytest.mark.parametrize("quantize,tolerance", [("none", 1e-5), ("float16", 1e-2),
                                                ("dynamic", INT8_PROB_TOLERANCE),
                                                ("int8", INT8_PROB_TOLERANCE)])
def test_tflite(trained, quantize, tolerance):
    path = str(trained["tmp"] / f"model_{quantize}.tflite")
    export(ExportConfig(model_name=NAME, dataset_name="cifar10", checkpoint_path=trained["ckpt"],
                        tflite_file=path, tflite_quantize=quantize,
                        dataset_dir=str(trained["tmp"] / "data"), calibration_steps=3))
    got = _run_tflite(path, trained["x"])
    print(f"{quantize}: max |p - p_tf2| = {np.max(np.abs(got - trained['expected'])):.2e}, "
          f"top-1 {np.argmax(got, -1)} vs {np.argmax(trained['expected'], -1)}")
    assert np.max(np.abs(got - trained["expected"])) <= tolerance
    if quantize in ("none", "float16"):
        np.testing.assert_array_equal(np.argmax(got, -1), np.argmax(trained["expected"], -1))


def test_int8_needs_dataset_dir(trained):
    with pytest.raises(SlimError, match="--dataset_dir"):
        export(ExportConfig(model_name=NAME, dataset_name="cifar10",
                            checkpoint_path=trained["ckpt"],
                            tflite_file=str(trained["tmp"] / "x.tflite"), tflite_quantize="int8"))


def test_serving_formats_need_checkpoint(tmp_path):
    with pytest.raises(SlimError, match="--checkpoint_path"):
        export(ExportConfig(model_name=NAME, dataset_name="cifar10",
                            saved_model_dir=str(tmp_path / "sm")))


def test_freeze_saved_model(trained, saved_model):
    out = str(trained["tmp"] / "frozen_from_saved_model.pb")
    status = run_cli(freeze_cli.define_flags, freeze_cli.main, "slim-freeze", "",
                     ["slim-freeze", f"--input_saved_model_dir={saved_model}",
                      f"--output_graph={out}"])
    assert status == 0
    frozen = load_graph_def(out)
    assert not [n.name for n in frozen.node if n.op in ("VarHandleOp", "VariableV2")]
    run = graph_runner(frozen, "serving_default_images", "StatefulPartitionedCall:2")
    np.testing.assert_allclose(run(trained["x"]), trained["expected"], atol=1e-5)
