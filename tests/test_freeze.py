"""slim-freeze, slim-export and slim-predict details: formats, filters, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from export_helpers import run_frozen, write_image
from slimcli import slim
from slimcli.cli import export as export_cli
from slimcli.cli import freeze as freeze_cli
from slimcli.cli import predict as predict_cli
from slimcli.cli.base import run_cli
from slimcli.errors import SlimError
from slimcli.export import ExportConfig, build_inference_graph, export
from slimcli.freeze import freeze_graph_def, load_graph_def, output_candidates
from slimcli.nets import get_network_fn
from slimcli.serving import format_top_k, read_labels

OUTPUT = "Predictions/Reshape_1"


def _cli(module, prog: str, argv: list[str]) -> int:
    return run_cli(module.define_flags, module.main, prog, "", [prog, *argv])


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """An exported lenet graph (text and binary) and a checkpoint for it."""
    tmp = tmp_path_factory.mktemp("lenet")
    net = get_network_fn("lenet", 10)
    net.build([1, 28, 28, 3])
    rs = np.random.RandomState(3)
    for var in net.variables_dict().values():
        var.assign(rs.normal(0, 0.05, var.shape).astype(np.float32))
    ckpt = slim.save_checkpoint(net.variables_dict(), str(tmp / "train" / "model.ckpt-7"))
    assert _cli(export_cli, "slim-export", ["--model_name=lenet", "--dataset_name=mnist",
                                            f"--output_file={tmp / 'graph.pbtxt'}",
                                            "--write_text_graphdef"]) == 0
    x = rs.uniform(-1, 1, [2, 28, 28, 3]).astype(np.float32)
    return dict(tmp=tmp, ckpt=ckpt, net=net, x=x,
                expected=net(x)[1]["Predictions"].numpy())


def test_text_graph_with_checkpoint_directory(lenet):
    out = lenet["tmp"] / "frozen.pb"
    status = _cli(freeze_cli, "slim-freeze", [
        f"--input_graph={lenet['tmp'] / 'graph.pbtxt'}", f"--input_checkpoint={lenet['tmp']}/train",
        f"--output_graph={out}", f"--output_node_names={OUTPUT}", "--input_saver=unused"])
    assert status == 0
    got = run_frozen(load_graph_def(str(out)), OUTPUT, lenet["x"])
    np.testing.assert_allclose(got, lenet["expected"], atol=1e-6)


def test_wrong_output_name_lists_candidates(lenet, capsys):
    status = _cli(freeze_cli, "slim-freeze", [
        f"--input_graph={lenet['tmp'] / 'graph.pbtxt'}", f"--input_checkpoint={lenet['ckpt']}",
        f"--output_graph={lenet['tmp'] / 'x.pb'}",
        "--output_node_names=LeNet/Predictions/Reshape_1"])
    err = capsys.readouterr().err
    assert status == 2
    assert "no node named 'LeNet/Predictions/Reshape_1'" in err
    assert f"closest first: {OUTPUT}" in err
    assert not (lenet["tmp"] / "x.pb").exists()


def test_missing_variable_is_named(lenet, tmp_path):
    values = {k: v for k, v in lenet["net"].variables_dict().items() if k != "LeNet/fc3/biases"}
    partial = slim.save_checkpoint(values, str(tmp_path / "model.ckpt-1"))
    graph_def = load_graph_def(str(lenet["tmp"] / "graph.pbtxt"), binary=False)
    with pytest.raises(SlimError, match="has no variable 'LeNet/fc3/biases'"):
        freeze_graph_def(graph_def, partial, OUTPUT)


def test_shape_mismatch_is_named(lenet, tmp_path):
    graph_def = build_inference_graph(ExportConfig(model_name="lenet", num_classes=5)).graph_def
    with pytest.raises(SlimError, match=r"LeNet/fc4/weights: the graph has shape \[1024, 5\]"):
        freeze_graph_def(graph_def, lenet["ckpt"], OUTPUT)


def test_blacklist_keeps_variable_and_whitelist_limits(lenet):
    graph_def = load_graph_def(str(lenet["tmp"] / "graph.pbtxt"), binary=False)
    kept = freeze_graph_def(graph_def, lenet["ckpt"], OUTPUT,
                            variable_names_blacklist="LeNet/fc4/biases")
    assert [n.name for n in kept.node if n.op == "VariableV2"] == ["LeNet/fc4/biases"]
    only = freeze_graph_def(graph_def, lenet["ckpt"], OUTPUT,
                            variable_names_whitelist="LeNet/conv1/weights")
    assert len([n for n in only.node if n.op == "VariableV2"]) == 7


def test_resource_variable_graph_freezes(lenet):
    graph = tf.Graph()
    with graph.as_default():  # TF2's default variables: VarHandleOp + ReadVariableOp
        images = tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 3], name="input")
        get_network_fn("lenet", 10)(images)
    graph_def = graph.as_graph_def()
    assert "LeNet/conv1/weights" in {n.name for n in graph_def.node if n.op == "VarHandleOp"}
    frozen = freeze_graph_def(graph_def, lenet["ckpt"], OUTPUT)
    np.testing.assert_allclose(run_frozen(frozen, OUTPUT, lenet["x"]), lenet["expected"],
                               atol=1e-6)


def test_export_with_checkpoint_writes_frozen_graph(lenet, capsys):
    out = lenet["tmp"] / "direct.pb"
    exported = export(ExportConfig(model_name="lenet", dataset_name="mnist",
                                   checkpoint_path=lenet["ckpt"], output_file=str(out)))
    assert exported.frozen
    got = run_frozen(load_graph_def(str(out)), OUTPUT, lenet["x"])
    np.testing.assert_allclose(got, lenet["expected"], atol=1e-6)


def test_export_errors(capsys):
    assert _cli(export_cli, "slim-export", ["--model_name=lenett", "--output_file=/tmp/x"]) == 2
    assert "Did you mean 'lenet'" in capsys.readouterr().err
    assert _cli(export_cli, "slim-export", ["--model_name=lenet", "--dataset_name=flower",
                                            "--output_file=/tmp/x"]) == 2
    assert "--dataset_name='flower'" in capsys.readouterr().err
    assert _cli(export_cli, "slim-export", ["--model_name=lenet"]) == 2
    assert "--output_file is required" in capsys.readouterr().err


def test_output_candidates_closest_first():
    graph_def = build_inference_graph(ExportConfig(model_name="lenet", num_classes=10)).graph_def
    assert output_candidates(graph_def, "Predictions/Reshape_2")[0] == "Predictions/Reshape_1"


def test_predict_from_checkpoint_uses_eval_preprocessing(lenet, capsys):
    image = write_image(str(lenet["tmp"] / "digit.png"), 28, 28, seed=5)
    labels = lenet["tmp"] / "labels.txt"
    labels.write_text("".join(f"{i}:digit_{i}\n" for i in range(10)))
    status = _cli(predict_cli, "slim-predict", [
        "--model_name=lenet", f"--checkpoint_path={lenet['tmp']}/train", f"--image={image}",
        f"--labels={labels}", "--top_k=3"])
    lines = capsys.readouterr().out.strip().splitlines()
    decoded = tf.io.decode_png(tf.io.read_file(image), channels=3)
    x = (tf.cast(decoded, tf.float32)[tf.newaxis] - 128.0) / 128.0  # lenet's eval preprocessing
    expected = lenet["net"](x)[1]["Predictions"].numpy()
    assert status == 0
    assert lines == format_top_k(expected, read_labels(str(labels)), 3)
    assert lines[0].startswith(f"digit_{int(np.argmax(expected))} (")


def test_labels_file_formats(tmp_path):
    (tmp_path / "ids.txt").write_text("0:background\n1:daisy\n\n")
    (tmp_path / "plain.txt").write_text("background\ndaisy\n")
    assert read_labels(str(tmp_path / "ids.txt")) == {0: "background", 1: "daisy"}
    assert read_labels(str(tmp_path / "plain.txt")) == {0: "background", 1: "daisy"}
    assert format_top_k(np.array([[0.25, 0.75]]), {0: "a", 1: "b"}) == ["b (1): 0.75",
                                                                        "a (0): 0.25"]


def test_export_flags_shape_the_graph(tmp_path, capsys):
    def export_graph(*flags_):
        out = tmp_path / "g.pb"
        assert _cli(export_cli, "slim-export", ["--model_name=lenet", f"--output_file={out}",
                                                *flags_]) == 0
        text = capsys.readouterr().out
        nodes = {n.name: n for n in load_graph_def(str(out)).node}
        return text, nodes

    def dims(node):
        return [d.size for d in node.attr["shape"].shape.dim]

    text, nodes = export_graph("--labels_offset=1", "--image_size=56", "--batch_size=2",
                               "--use_grayscale")
    assert dims(nodes["input"]) == [2, 56, 56, 1]  # batch, --image_size, one gray channel
    assert dims(nodes["LeNet/conv1/weights"]) == [5, 5, 1, 32]
    assert dims(nodes["LeNet/fc3/weights"]) == [14 * 14 * 64, 1024]
    assert dims(nodes["LeNet/fc4/weights"]) == [1024, 1000]  # ImageNet's 1001 minus the offset
    assert "input node:  input  float32 [2, 56, 56, 1]" in text
    assert "--input_width=56 --input_height=56 --input_mean=128 --input_std=128" in text
    _, training = export_graph("--is_training", "--num_classes=5")
    _, inference = export_graph("--num_classes=5")
    # dropout draws random numbers only in the training-mode graph
    assert any(n.op == "RandomUniform" and "dropout" in name.lower()
               for name, n in training.items())
    assert not any(n.op == "RandomUniform" and "dropout" in name.lower()
                   for name, n in inference.items())
