"""A quantization-aware LeNet, fine-tuned from a float checkpoint on generated images, then
evaluated with --quantize, exported (FakeQuant GraphDef, frozen, fully integer TFLite) and
evaluated through the TFLite interpreter; and the one-line errors of bad combinations."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import tensorflow as tf

from datasets_helpers import convert_folder, read_examples, write_intensity_classes
from slimcli import nets, slim
from slimcli.cli import evaluate as eval_cli
from slimcli.datasets import get_dataset
from slimcli.errors import SlimError
from slimcli.evaluate import EvalConfig, make_restore_fn
from slimcli.export import ExportConfig, build_inference_graph, export
from slimcli.export_formats import float_tensors
from slimcli.freeze import freeze_graph_def, graph_runner
from slimcli.preprocessing import get_preprocessing
from slimcli.quantization import eval_quantize_config
from slimcli.tflite_eval import TFLiteClassifier
from slimcli.train import TrainConfig, train

CLASSES = ("dark", "mid", "bright")


@pytest.fixture(scope="module")
def qat(tmp_path_factory):
    """A float LeNet checkpoint fine-tuned with --quantize_delay; read-only for the tests."""
    root = tmp_path_factory.mktemp("qat")
    images = write_intensity_classes(root / "images", CLASSES, 12, spread=50, step=90)
    dataset_dir = convert_folder(images, root / "records", "--num_validation=12")
    common = dict(model_name="lenet", dataset_name="folder", dataset_dir=dataset_dir,
                  batch_size=8, optimizer="adam", learning_rate=0.01, progress_bar=False,
                  seed=0, log_every_n_steps=100)
    float_net = nets.get_network_fn("lenet", len(CLASSES))
    float_net.build([None, 28, 28, 3])
    slim.save_checkpoint(float_net.variables_dict(), str(root / "float" / "model.ckpt-0"))
    train(TrainConfig(train_dir=str(root / "qat"), max_number_of_steps=60, quantize_delay=10,
                      checkpoint_path=str(root / "float"), **common))
    run = types.SimpleNamespace(root=root, dataset_dir=dataset_dir, float_dir=str(root / "float"),
                                qat_dir=str(root / "qat"), tflite=str(root / "lenet.tflite"),
                                checkpoint=slim.latest_checkpoint(str(root / "qat")))
    run.exported = export(_export_config(run, checkpoint_path=run.checkpoint,
                                         tflite_file=run.tflite, tflite_io_type="uint8",
                                         output_file=str(root / "frozen.pb")))
    return run


def _images(dataset_dir):
    """(preprocessed images, labels) of every record of the dataset."""
    preprocess = get_preprocessing("lenet")
    files = [*get_dataset("folder", "train", dataset_dir).files,
             *get_dataset("folder", "validation", dataset_dir).files]
    examples = read_examples(files)
    images = [preprocess(tf.io.decode_image(e["image/encoded"][0], channels=3), 28, 28)
              for e in examples]
    return np.stack(images), np.array([e["image/class/label"][0] for e in examples])


def _quantized_net(checkpoint):
    config = EvalConfig(model_name="lenet", quantize=True)
    net = nets.get_network_fn("lenet", len(CLASSES), quantize=eval_quantize_config(config))
    net.build([None, 28, 28, 3])
    make_restore_fn(net, config)(checkpoint)
    return net


def _export_config(qat, **kwargs):
    return ExportConfig(model_name="lenet", dataset_name="folder", dataset_dir=qat.dataset_dir,
                        quantize=True, **kwargs)


def test_quantized_eval_agrees_with_the_integer_tflite_model(qat):
    with open(qat.tflite, "rb") as f:
        assert float_tensors(f.read()) == []
    classifier = TFLiteClassifier(qat.tflite)
    assert classifier.input_type == np.uint8
    images, labels = _images(qat.dataset_dir)
    logits, _ = _quantized_net(qat.checkpoint)(images)
    fake_quant = np.argmax(logits, 1)
    integer = np.argmax(classifier(images), 1)
    assert np.mean(fake_quant == integer) >= 0.99
    assert np.mean(fake_quant == labels) > 0.9  # it learnt the classes
    frozen = graph_runner(qat.exported.graph_def, "input", qat.exported.output_name)(images)
    np.testing.assert_array_equal(np.argmax(frozen, 1), fake_quant)


def test_exported_graph_has_fake_quant_nodes_and_freezes(qat):
    exported = build_inference_graph(_export_config(qat, output_file="unused.pb"))
    ops = [node.op for node in exported.graph_def.node]
    assert ops.count("FakeQuantWithMinMaxVars") == 8  # 4 layers: weights and activations
    assert ops.count("FakeQuantWithMinMaxArgs") == 1  # the input, [-1, 1]
    names = {node.name for node in exported.graph_def.node}
    assert {"LeNet/conv1/weights_quant/FakeQuantWithMinMaxVars",
            "LeNet/fc4/act_quant/FakeQuantWithMinMaxVars"} <= names  # the original's op names
    frozen = freeze_graph_def(exported.graph_def, qat.checkpoint, [exported.output_name])
    assert not {"VariableV2", "VarHandleOp"} & {node.op for node in frozen.node}
    images, _ = _images(qat.dataset_dir)
    probabilities = graph_runner(frozen, "input", exported.output_name)(images[:4])
    logits, _ = _quantized_net(qat.checkpoint)(images[:4])
    np.testing.assert_allclose(probabilities, tf.nn.softmax(logits), atol=1e-5)


def _eval(qat, tmp_path, *flags):
    out = tmp_path / "results.json"
    with pytest.raises(SystemExit) as stop:
        eval_cli.run(["slim-eval", "--model_name=lenet", "--dataset_name=folder",
                      f"--dataset_dir={qat.dataset_dir}", "--dataset_split_name=validation",
                      f"--eval_dir={tmp_path}", f"--output_json={out}", "--noprogress",
                      "--batch_size=5", *flags])
    assert stop.value.code == 0
    return json.loads(out.read_text())


def test_slim_eval_runs_the_tflite_model_through_the_interpreter(qat, tmp_path):
    results = _eval(qat, tmp_path, f"--tflite_file={qat.tflite}")
    split = get_dataset("folder", "validation", qat.dataset_dir)
    preprocess = get_preprocessing("lenet")
    examples = read_examples(split.files)
    images = np.stack([preprocess(tf.io.decode_image(e["image/encoded"][0], channels=3), 28, 28)
                       for e in examples])
    labels = np.array([e["image/class/label"][0] for e in examples])
    expected = np.mean(np.argmax(TFLiteClassifier(qat.tflite)(images), 1) == labels)
    assert results["eval/Accuracy"] == pytest.approx(expected)
    assert results["num_examples"] == len(labels)
    quantized = _eval(qat, tmp_path, f"--checkpoint_path={qat.qat_dir}", "--quantize")
    assert quantized["eval/Accuracy"] == pytest.approx(expected, abs=1.01 / len(labels))


def test_quantize_on_a_checkpoint_without_ranges_is_a_one_line_error(qat):
    config = EvalConfig(model_name="lenet", quantize=True)
    net = nets.get_network_fn("lenet", len(CLASSES), quantize=eval_quantize_config(config))
    net.build([None, 28, 28, 3])
    with pytest.raises(SlimError, match="holds none of the 8 quantization ranges of lenet") as e:
        make_restore_fn(net, config)(slim.latest_checkpoint(qat.float_dir))
    assert "\n" not in str(e.value) and "--quantize_delay" in str(e.value)
    with pytest.raises(SlimError, match="not trained with --quantize_delay"):
        export(_export_config(qat, checkpoint_path=qat.float_dir, output_file="unused.pb"))


@pytest.mark.parametrize("config, message", [
    (TrainConfig(quantize_delay=0, precision="bfloat16", synthetic_data=True),
     "computes in float32"),
    (TrainConfig(quantize_freeze_bn_delay=5, synthetic_data=True), "needs --quantize_delay"),
    (TrainConfig(quantize_delay=-2, synthetic_data=True), "or -1"),
    (ExportConfig(quantize=True, tflite_quantize="int8", output_file="g.pb"),
     "pass one of the two"),
    (EvalConfig(quantize=True, tflite_file="m.tflite", dataset_dir="d"), "drop --quantize"),
], ids=["bfloat16", "freeze-without-delay", "negative-delay", "qat-and-ptq", "eval-both"])
def test_bad_combinations_are_one_line_errors(config, message):
    with pytest.raises(SlimError, match=message) as error:
        config.validate()
    assert "\n" not in str(error.value)
