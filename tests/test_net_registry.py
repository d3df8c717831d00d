"""The net registry is the one per-net source: discovery, derived tables, a toy net end to end."""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from slimcli import benchmark, nets, preprocessing
from slimcli.cli import download as download_cli
from slimcli.cli import evaluate as eval_cli
from slimcli.cli import export as export_cli
from slimcli.cli import train as train_cli
from slimcli.datasets import checkpoints
from slimcli.freeze import load_graph_def

NETS_DIR = os.path.dirname(nets.__file__)


def _module_names_on_disk() -> list[str]:
    """Every module file under slimcli/nets/, as an import name (found without pkgutil)."""
    names = []
    for root, _, files in os.walk(NETS_DIR):
        package = os.path.relpath(root, os.path.dirname(os.path.dirname(NETS_DIR)))
        for file in sorted(files):
            if file.endswith(".py") and file != "__init__.py":
                names.append(f"{package.replace(os.sep, '.')}.{file[:-3]}")
    return names


@pytest.mark.parametrize("module_name", _module_names_on_disk())
def test_every_module_that_defines_nets_is_registered(module_name):
    module = importlib.import_module(module_name)
    with open(module.__file__) as f:
        builds_specs = "NetSpec(" in f.read()
    if module_name == "slimcli.nets.registry":
        assert not hasattr(module, "NETS")
        return
    if builds_specs:
        assert hasattr(module, "NETS"), f"{module_name} builds NetSpecs but exports no NETS"
    for spec in getattr(module, "NETS", ()):
        assert nets.get_net_spec(spec.name) is spec, spec.name


def test_discovery_finds_the_family_modules_and_is_idempotent():
    before = dict(nets.NETS_REGISTRY.items())
    families = nets.register_family_modules()
    assert {"slimcli.nets.lenet", "slimcli.nets.mobilenet.mobilenet_v2",
            "slimcli.nets.nasnet.pnasnet"} <= set(families)
    assert dict(nets.NETS_REGISTRY.items()) == before
    specs = [spec for name in families for spec in importlib.import_module(name).NETS]
    assert sorted(spec.name for spec in specs) == sorted(nets.list_nets())


def test_zoo_exclude_scopes_are_the_logits_scopes():
    zoo_nets = [name for name, spec in nets.NETS_REGISTRY.items() if spec.zoo is not None]
    entries = [zoo for _, spec in nets.NETS_REGISTRY.items() for zoo in spec.zoo_checkpoints]
    assert sorted(checkpoints.ZOO.names()) == sorted(zoo.name for zoo in entries)
    assert len(zoo_nets) == 22
    for zoo in entries:
        spec = nets.get_net_spec(zoo.model_name)
        entry = checkpoints.ZOO.get(zoo.name)
        assert entry.exclude_scopes == ",".join(spec.logits_scopes), zoo.name
        assert entry.exclude_scopes == spec.checkpoint_exclude_scopes
        assert zoo.name == zoo.model_name or zoo.quantized


def test_derived_tables_follow_the_registry():
    for name, spec in nets.NETS_REGISTRY.items():
        assert preprocessing.PREPROCESSING_FOR_MODEL[name] == spec.preprocessing
        assert (name in preprocessing.DEFAULTS_NOT_IN_ORIGINAL) == (not spec.preprocessing_in_original)
        assert benchmark.KERAS_EQUIVALENTS.get(name) == spec.keras_twin, name
    assert benchmark.KERAS_EQUIVALENTS["mobilenet_v1_050"] == ("MobileNet", {"alpha": 0.5})


@pytest.mark.parametrize("preprocessing_name, expected", [
    (None, "lenet"), ("", "lenet"), ("vgg", "vgg"), ("resnet_v1_50", "vgg")])
def test_training_and_evaluation_pick_the_preprocessing_one_way(preprocessing_name, expected):
    for is_training in (True, False):
        chosen = preprocessing.preprocessing_for_net("lenet", preprocessing_name, is_training)
        assert (chosen.name, chosen.is_training) == (expected, is_training)


TOY_FAMILY = '''
"""A toy family module: one small net, found by discovery alone."""

import tensorflow as tf

from slimcli import slim
from slimcli.nets.registry import NetSpec


def toynet(images, num_classes=3, is_training=False, prediction_fn=slim.softmax, scope="ToyNet"):
    end_points = {}
    with slim.variable_scope(scope, "ToyNet"):
        net = end_points["conv1"] = slim.conv2d(images, 4, [3, 3], scope="conv1")
        net = end_points["pool1"] = slim.max_pool2d(net, [2, 2], 2, scope="pool1")
        net = end_points["Flatten"] = slim.flatten(net)
        if not num_classes:
            return net, end_points
        logits = end_points["Logits"] = slim.fully_connected(
            net, num_classes, activation_fn=None, scope="logits")
    end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


def toynet_arg_scope(weight_decay=0.0):
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=tf.nn.relu,
                        weights_regularizer=slim.l2_regularizer(weight_decay)) as sc:
        return sc


NETS = (
    NetSpec(name="toynet", fn=toynet, arg_scope=toynet_arg_scope, default_image_size=12,
            preprocessing="lenet", predictions_op="Predictions/Reshape_1",
            logits_scopes=("ToyNet/logits",)),
)
'''


@pytest.fixture
def toy_family(tmp_path, monkeypatch):
    """`toy_family.py` in a directory on `slimcli.nets.__path__`, discovered like the others."""
    family_dir = tmp_path / "family"
    family_dir.mkdir()
    (family_dir / "toy_family.py").write_text(textwrap.dedent(TOY_FAMILY))
    monkeypatch.setattr(nets, "__path__", [*nets.__path__, str(family_dir)])
    monkeypatch.setattr(nets.NETS_REGISTRY, "_entries", dict(nets.NETS_REGISTRY._entries))
    assert "toynet" not in nets.NETS_REGISTRY
    yield nets.register_family_modules()
    sys.modules.pop("slimcli.nets.toy_family", None)


def _run(command, argv) -> int:
    with pytest.raises(SystemExit) as exit_info:
        command.run(argv)
    return exit_info.value.code


def _folder_dataset(root) -> str:
    """2 classes x 6 PNG images of 12x12, converted with the real folder converter."""
    rng = np.random.RandomState(0)
    for label in range(2):
        os.makedirs(root / "images" / f"class{label}")
        for i in range(6):
            pixels = (rng.rand(12, 12, 3) * 60 + 120 * label).astype(np.uint8)
            Image.fromarray(pixels).save(root / "images" / f"class{label}" / f"{i}.png")
    assert _run(download_cli, ["slim-download", "--dataset_name=folder",
                               f"--image_dir={root / 'images'}",
                               f"--dataset_dir={root / 'records'}", "--num_validation=4"]) == 0
    return str(root / "records")


def test_a_toy_family_module_trains_evaluates_and_exports(toy_family, tmp_path):
    assert "slimcli.nets.toy_family" in toy_family
    assert nets.get_net_spec("toynet").preprocessing == "lenet"
    data = _folder_dataset(tmp_path)
    train_dir, eval_dir = tmp_path / "train", tmp_path / "eval"
    assert _run(train_cli, ["slim-train", "--model_name=toynet", "--dataset_name=folder",
                            f"--dataset_dir={data}", f"--train_dir={train_dir}",
                            "--batch_size=4", "--max_number_of_steps=2", "--optimizer=sgd",
                            "--save_summaries_secs=0", "--seed=1"]) == 0
    reader = tf.train.load_checkpoint(str(train_dir))
    assert int(reader.get_tensor("global_step")) == 2
    assert reader.get_variable_to_shape_map()["ToyNet/logits/weights"] == [6 * 6 * 4, 2]

    results = eval_dir / "results.json"
    assert _run(eval_cli, ["slim-eval", "--model_name=toynet", "--dataset_name=folder",
                           "--dataset_split_name=validation", f"--dataset_dir={data}",
                           f"--checkpoint_path={train_dir}", f"--eval_dir={eval_dir}",
                           "--batch_size=2", "--noprogress", f"--output_json={results}"]) == 0
    evaluated = json.loads(results.read_text())
    assert evaluated["num_examples"] == 4 and evaluated["global_step"] == 2
    assert 0.0 <= evaluated["eval/Accuracy"] <= 1.0

    frozen = tmp_path / "toynet_frozen.pb"
    assert _run(export_cli, ["slim-export", "--model_name=toynet", "--dataset_name=folder",
                             f"--dataset_dir={data}", f"--checkpoint_path={train_dir}",
                             f"--output_file={frozen}"]) == 0
    ops = {node.name for node in load_graph_def(str(frozen)).node}
    assert "Predictions/Reshape_1" in ops and "input" in ops
