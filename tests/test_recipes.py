"""The recipes of scripts/recipes, run as a user runs them (bash, environment variables,
--mirror to a local folder of archives built here), with tiny steps and images."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from datasets_helpers import (MNIST_FILES, make_cifar_archive, make_flowers_tgz,
                              make_mnist_files, write_sidecar)
from export_helpers import GENUINE_CKPTS, ROOT
from nets_helpers import reference, set_formula_c
from slimcli import slim
from slimcli.nets import get_network_fn

RECIPES = os.path.join(ROOT, "scripts", "recipes")


def _flowers(mirror: str) -> None:
    make_flowers_tgz(mirror, per_class=4)
    write_sidecar(os.path.join(mirror, "flower_photos.tgz"))


def _cifar10(mirror: str) -> None:
    make_cifar_archive(mirror, per_batch=4)
    write_sidecar(os.path.join(mirror, "cifar-10-python.tar.gz"))


def _mnist(mirror: str) -> None:
    make_mnist_files(mirror, sizes=(8, 5))
    for names in MNIST_FILES.values():
        for name in names:
            write_sidecar(os.path.join(mirror, name))


def _unpinned_site(directory: str) -> str:
    """A PYTHONPATH folder whose sitecustomize drops the pinned digests in the recipe's
    commands: the mirror's small stand-in archives are checked against their .sha256 files."""
    os.makedirs(directory)
    with open(os.path.join(directory, "sitecustomize.py"), "w") as f:
        f.write("from slimcli.datasets import fetch\nfetch.KNOWN_ARCHIVES.clear()\n")
    return directory


def _zoo_like_checkpoint(name: str, num_classes: int, directory: str) -> str:
    """A checkpoint with the zoo's variables (formula C values), standing in for a download."""
    net = get_network_fn(name, num_classes)
    size = 64 if name.startswith("resnet") else 299
    net(tf.zeros([1, size, size, 3]))  # built eagerly: cheaper than tracing a big net
    set_formula_c(net.variables_dict(), reference(name)["weights"]["wscale"])
    return slim.save_checkpoint(net.variables_dict(), os.path.join(directory, "model.ckpt"))


# recipe, dataset maker, environment, the train dirs that end evaluated
CASES = {
    "finetune_mobilenet_v1_on_flowers": (
        _flowers, {"MODEL": "mobilenet_v1_025", "IMAGE_SIZE": "64",
                   "CHECKPOINT_PATH": os.path.join(GENUINE_CKPTS, "mobilenet_v1_025",
                                                   "model.ckpt")}, ("", "all")),
    "finetune_inception_v3_on_flowers": (_flowers, {"IMAGE_SIZE": "107"}, ("", "all")),
    "finetune_resnet_v1_50_on_flowers": (_flowers, {"IMAGE_SIZE": "64"}, ("", "all")),
    "train_cifarnet_on_cifar10": (_cifar10, {"STEPS": "2"}, ("",)),
    "train_lenet_on_mnist": (_mnist, {"STEPS": "2"}, ("",)),
}
ZOO_LIKE = {"finetune_inception_v3_on_flowers": ("inception_v3", 1001),
            "finetune_resnet_v1_50_on_flowers": ("resnet_v1_50", 1000)}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_recipe_runs_to_the_end(recipe, tmp_path):
    make_data, extra, evaluated = CASES[recipe]
    mirror = str(tmp_path / "mirror")
    os.makedirs(mirror)
    make_data(mirror)
    env = {**os.environ, **extra, "MIRROR": mirror, "DATASET_DIR": str(tmp_path / "data"),
           "TRAIN_DIR": str(tmp_path / "train"), "CHECKPOINT_DIR": str(tmp_path / "ckpt"),
           "BATCH_SIZE": "2", "STEPS_LOGITS": "2", "STEPS_ALL": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [_unpinned_site(str(tmp_path / "site")),
                                                       os.environ.get("PYTHONPATH")]))}
    if recipe in ZOO_LIKE:
        env["CHECKPOINT_PATH"] = _zoo_like_checkpoint(*ZOO_LIKE[recipe], str(tmp_path / "zoo"))
    result = subprocess.run(["bash", os.path.join(RECIPES, f"{recipe}.sh")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    printed = [line for line in result.stdout.splitlines() if line.startswith("$ slim-")]
    assert printed[0].startswith("$ slim-download") and f"--mirror={mirror}" in printed[0]
    assert sum(line.startswith("$ slim-train") for line in printed) == len(evaluated)
    for sub in evaluated:
        with open(tmp_path / "train" / sub / "eval" / "results.json") as f:
            results = json.load(f)
        assert 0.0 <= results["eval/Accuracy"] <= 1.0
    if "CHECKPOINT_PATH" in env:
        assert "Fine-tuning from" in result.stderr + result.stdout


def _photo_folder(directory: str, per_class: int = 6) -> str:
    """Generated JPEG photos in class folders: each class its own colour, sizes vary."""
    from PIL import Image
    rng = np.random.RandomState(0)
    for index, name in enumerate(["daisy", "dandelion", "roses", "sunflowers", "tulips"]):
        os.makedirs(os.path.join(directory, name))
        for i in range(per_class):
            height, width = 40 + 4 * i, 60 - 3 * i
            pixels = rng.randint(0, 60, (height, width, 3)) + 40 * index
            Image.fromarray(pixels.astype(np.uint8)).save(
                os.path.join(directory, name, f"{i}.jpg"), quality=90)
    return directory


def test_training_from_scratch_on_photos_in_its_minutes(tmp_path):
    photos = _photo_folder(str(tmp_path / "photos"))
    env = {**os.environ, "IMAGE_SIZE": "32", "BATCH_SIZE": "4", "RESERVE_SECONDS": "60"}
    result = subprocess.run(["bash", os.path.join(RECIPES, "train_from_scratch_on_photos.sh"),
                             photos, str(tmp_path / "work"), "0.5"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    printed = [line for line in result.stdout.splitlines() if line.startswith("$ slim-")]
    assert [line.split()[1] for line in printed] == ["slim-download", "slim-train", "slim-eval"]
    assert "--max_train_seconds=10 " in printed[1]  # 30 s less the reserve: the 10 s floor
    with open(tmp_path / "work" / "train" / "eval" / "results.json") as f:
        results = json.load(f)
    assert results["num_examples"] == 3  # 10% of the 30 photos held out
    assert (f"validation accuracy: {100 * results['eval/Accuracy']:.1f}% of 3 photos, after "
            in result.stdout)


def test_every_recipe_is_tested():
    found = {f[:-3] for f in os.listdir(RECIPES) if f.endswith(".sh") and f != "common.sh"}
    assert found == set(CASES) | {"train_from_scratch_on_photos"}
