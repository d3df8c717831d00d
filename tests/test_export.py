"""slim-export → slim-freeze → frozen graph (Python) and C++ label_image, vs. the TF2 net."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from export_helpers import (build_label_image, cxx_available, parse_top_k, restored_net,
                            run_frozen, write_image, write_labels)
from nets_helpers import reference
from slimcli.cli import freeze as freeze_cli
from slimcli.cli.base import run_cli
from slimcli.export import ExportConfig, describe, export
from slimcli.freeze import load_graph_def
from slimcli.nets import get_net_spec
from slimcli.predict import PredictConfig, predict
from slimcli.serving import client_preprocessing, decode_image_file, label_image_preprocess

ACCEPTANCE_NETS = ["lenet", "cifarnet", "mobilenet_v1_025"]
TOLERANCE = 1e-5


@pytest.fixture(scope="session")
def label_image_binary():
    if not cxx_available():
        pytest.skip("no C++ compiler (g++ or $CXX): the label_image build cannot run")
    return build_label_image()


def _freeze_cli(argv: list[str]) -> int:
    return run_cli(freeze_cli.define_flags, freeze_cli.main, "slim-freeze", "",
                   ["slim-freeze", *argv])


_PIPELINES: dict[str, dict] = {}


@pytest.fixture(scope="module", params=ACCEPTANCE_NETS)
def pipeline(request, tmp_path_factory):
    """Export, freeze with a checkpoint, and an image with label_image's preprocessing."""
    if request.param not in _PIPELINES:
        _PIPELINES[request.param] = _make_pipeline(request.param, tmp_path_factory)
    return _PIPELINES[request.param]


@pytest.fixture(scope="module")
def lenet_pipeline(tmp_path_factory):
    if "lenet" not in _PIPELINES:
        _PIPELINES["lenet"] = _make_pipeline("lenet", tmp_path_factory)
    return _PIPELINES["lenet"]


def _make_pipeline(name: str, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp(name)
    ref = reference(name)
    net, ckpt = restored_net(name, str(tmp / "train"))
    size = ref["image_size"]
    exported = export(ExportConfig(model_name=name, num_classes=ref["num_classes"],
                                   output_file=str(tmp / "graph.pb")))
    frozen_path = str(tmp / "frozen.pb")
    status = _freeze_cli([f"--input_graph={tmp / 'graph.pb'}", "--input_binary=true",
                          f"--input_checkpoint={ckpt}", f"--output_graph={frozen_path}",
                          f"--output_node_names={exported.output_name}"])
    assert status == 0
    pre = client_preprocessing(get_net_spec(name).preprocessing)
    image = write_image(str(tmp / "image.png"), size + 13, size + 7)  # resized by label_image
    x = label_image_preprocess(decode_image_file(image), size, size, pre.input_mean,
                               pre.input_std).numpy()
    _, end_points = net(x)
    expected = end_points["Predictions"].numpy()
    return dict(name=name, tmp=tmp, ckpt=ckpt, exported=exported, frozen=frozen_path, image=image,
                x=x, expected=expected, pre=pre, size=size, classes=ref["num_classes"])


def test_exported_graph_contract(pipeline):
    exported, name = pipeline["exported"], pipeline["name"]
    ref = reference(name)
    nodes = {n.name: n for n in load_graph_def(str(pipeline["tmp"] / "graph.pb")).node}
    assert nodes["input"].op == "Placeholder"
    assert exported.output_name == ref["predictions_tensor"].split(":")[0]
    assert {n for n, _, _ in ref["variables"]} <= nodes.keys()
    text = describe(exported)
    assert f"--output_layer={exported.output_name}" in text
    assert f"--input_mean={pipeline['pre'].input_mean:g}" in text


def test_frozen_graph_matches_tf2_net(pipeline):
    frozen = load_graph_def(pipeline["frozen"])
    assert not [n.name for n in frozen.node if n.op in ("VarHandleOp", "VariableV2")]
    assert [n.name for n in frozen.node if n.op == "Placeholder"] == ["input"]
    got = run_frozen(frozen, pipeline["exported"].output_name, pipeline["x"])
    np.testing.assert_allclose(got, pipeline["expected"], atol=TOLERANCE, rtol=0)


def test_slim_predict_matches_tf2_net(pipeline):
    pre = pipeline["pre"]
    [(_, got)] = predict(PredictConfig(image=pipeline["image"], graph=pipeline["frozen"],
                                       input_mean=pre.input_mean, input_std=pre.input_std))
    np.testing.assert_allclose(got, pipeline["expected"], atol=TOLERANCE, rtol=0)


def test_label_image_matches_tf2_net(pipeline, label_image_binary):
    labels = write_labels(str(pipeline["tmp"] / "labels.txt"), pipeline["classes"])
    size, pre = pipeline["size"], pipeline["pre"]
    result = subprocess.run(
        [label_image_binary, f"--image={pipeline['image']}", f"--graph={pipeline['frozen']}",
         f"--labels={labels}", f"--input_width={size}", f"--input_height={size}",
         f"--input_mean={pre.input_mean}", f"--input_std={pre.input_std}",
         f"--output_layer={pipeline['exported'].output_name}",
         f"--top_k={pipeline['classes']}"], capture_output=True, text=True, check=True)
    rows = parse_top_k(result.stdout)
    expected = pipeline["expected"][0]
    assert len(rows) == pipeline["classes"]
    assert rows[0][1] == int(np.argmax(expected))
    for label, index, score in rows:
        assert label == f"class_{index}"
        assert abs(score - expected[index]) <= TOLERANCE, (index, score, expected[index])


def test_tensorflow_freeze_graph_accepts_export(lenet_pipeline):
    pipeline = lenet_pipeline
    tmp, output, ckpt = pipeline["tmp"], pipeline["exported"].output_name, pipeline["ckpt"]
    subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.freeze_graph",
         f"--input_graph={tmp / 'graph.pb'}", "--input_binary=true",
         f"--input_checkpoint={ckpt}", f"--output_graph={tmp / 'tf_frozen.pb'}",
         f"--output_node_names={output}"], check=True, capture_output=True)
    got = run_frozen(load_graph_def(str(tmp / "tf_frozen.pb")), output, pipeline["x"])
    np.testing.assert_allclose(got, pipeline["expected"], atol=TOLERANCE, rtol=0)
