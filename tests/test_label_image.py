"""The C++ label_image: image formats, output format, and its errors (built once per session)."""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest
from PIL import Image

from export_helpers import build_label_image, cxx_available, write_image, write_labels
from slimcli import slim
from slimcli.export import ExportConfig, export
from slimcli.nets import get_network_fn
from slimcli.predict import PredictConfig, format_results, predict

OUTPUT = "Predictions/Reshape_1"
FLAGS = ["--input_width=28", "--input_height=28", "--input_mean=128", "--input_std=128",
         f"--output_layer={OUTPUT}"]


@pytest.fixture(scope="module")
def binary():
    if not cxx_available():
        pytest.skip("no C++ compiler (g++ or $CXX): the label_image build cannot run")
    return build_label_image()


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("label_image")
    net = get_network_fn("lenet", 10)
    net.build([1, 28, 28, 3])
    rs = np.random.RandomState(11)
    for var in net.variables_dict().values():
        var.assign(rs.normal(0, 0.03, var.shape).astype(np.float32))
    ckpt = slim.save_checkpoint(net.variables_dict(), str(tmp / "model.ckpt-1"))
    export(ExportConfig(model_name="lenet", dataset_name="mnist", checkpoint_path=ckpt,
                        output_file=str(tmp / "frozen.pb")))
    return dict(tmp=tmp, graph=str(tmp / "frozen.pb"),
                labels=write_labels(str(tmp / "labels.txt"), 10))


def _run(binary: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], capture_output=True, text=True)


@pytest.mark.parametrize("extension", ["jpg", "png", "gif", "bmp"])
def test_formats_match_slim_predict(binary, frozen, extension):
    png = write_image(str(frozen["tmp"] / "photo.png"), 40, 33, seed=2)
    path = str(frozen["tmp"] / f"photo.{extension}")
    Image.open(png).save(path)
    result = _run(binary, f"--image={path}", f"--graph={frozen['graph']}",
                  f"--labels={frozen['labels']}", *FLAGS)
    assert result.returncode == 0, result.stderr
    expected = format_results(
        predict(PredictConfig(image=path, graph=frozen["graph"], output_layer=OUTPUT,
                              input_mean=128.0, input_std=128.0)), frozen["labels"], 5)
    assert result.stdout.strip().splitlines() == expected.splitlines()


def test_tensorflow_log_lines_stay_off_unless_asked_for(binary, frozen):
    """TensorFlow's start-up lines (CUDA, CPU features), printed while its libraries load,
    are held back as the Python commands hold them; --verbose or TF_CPP_MIN_LOG_LEVEL shows
    them."""
    image = write_image(str(frozen["tmp"] / "quiet.png"), 28, 28)
    args = [f"--image={image}", f"--graph={frozen['graph']}", f"--labels={frozen['labels']}",
            *FLAGS]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([binary, *args], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert len(quiet.stdout.strip().splitlines()) == 5
    tf_line = re.compile(r"^(WARNING: All log messages|[IWEF]\d{4} )", re.M)
    verbose = subprocess.run([binary, *args, "--verbose"], capture_output=True, text=True,
                             env=env)
    assert verbose.returncode == 0 and tf_line.search(verbose.stderr), verbose.stderr
    assert verbose.stdout == quiet.stdout
    own = subprocess.run([binary, *args], capture_output=True, text=True,
                         env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert tf_line.search(own.stderr), own.stderr


def test_missing_image(binary, frozen):
    result = _run(binary, "--image=/nonexistent/cat.jpg", f"--graph={frozen['graph']}",
                  f"--labels={frozen['labels']}", *FLAGS)
    assert result.returncode == 1
    assert "image file '/nonexistent/cat.jpg' does not exist" in result.stderr


def test_unknown_output_layer_lists_candidates(binary, frozen):
    image = write_image(str(frozen["tmp"] / "x.png"), 28, 28)
    result = _run(binary, f"--image={image}", f"--graph={frozen['graph']}",
                  f"--labels={frozen['labels']}", "--output_layer=softmax")
    assert result.returncode == 1
    assert "no node named --output_layer=softmax" in result.stderr
    assert OUTPUT in result.stderr


def test_missing_graph_labels_and_input_layer_name_the_flag(binary, frozen):
    image = write_image(str(frozen["tmp"] / "y.png"), 28, 28)
    common = [f"--image={image}", *FLAGS]
    result = _run(binary, "--graph=/nonexistent/g.pb", f"--labels={frozen['labels']}", *common)
    assert result.returncode == 1
    assert "graph file '/nonexistent/g.pb' does not exist; pass an existing file with --graph=" \
        in result.stderr
    result = _run(binary, f"--graph={frozen['graph']}", "--labels=/nonexistent/l.txt", *common)
    assert result.returncode == 1
    assert "labels file '/nonexistent/l.txt' does not exist" in result.stderr
    result = _run(binary, f"--graph={frozen['graph']}", f"--labels={frozen['labels']}", *common,
                  "--input_layer=images")
    assert result.returncode == 1
    assert "--input_layer=images" in result.stderr and "input" in result.stderr


def test_not_an_image(binary, frozen):
    result = _run(binary, f"--image={frozen['labels']}", f"--graph={frozen['graph']}",
                  f"--labels={frozen['labels']}", *FLAGS)
    assert result.returncode == 1
    assert "cannot decode --image=" in result.stderr


def test_help_and_unknown_flag(binary):
    assert "--input_mean" in _run(binary, "--help").stdout
    result = _run(binary, "--input_meen=3")
    assert result.returncode == 1 and "unknown flag --input_meen" in result.stderr
