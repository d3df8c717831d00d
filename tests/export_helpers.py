"""Shared pieces of the export tests: checkpoints, images, the label_image binary."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

from nets_helpers import DATA, reference, set_formula_c
from slimcli import slim
from slimcli.freeze import graph_runner
from slimcli.nets import get_network_fn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABEL_IMAGE_SOURCE = os.path.join(ROOT, "cc", "label_image", "main.cc")
BUILD_SCRIPT = os.path.join(ROOT, "scripts", "build_label_image.sh")
LABEL_IMAGE = os.path.join(ROOT, "bin", "label_image")  # where BUILD_SCRIPT writes by default
GENUINE_CKPTS = os.path.join(DATA, "ckpt")


def restored_net(name: str, ckpt_dir: str, num_classes: int | None = None):
    """(net, checkpoint prefix): the genuine TF1 checkpoint when tests/data has one,
    else one written from formula C with slim.save_checkpoint."""
    ref = reference(name)
    classes = num_classes or ref["num_classes"]
    net = get_network_fn(name, classes)
    size = ref["image_size"]
    net(tf.zeros([1, size, size, 3]))  # built eagerly: cheaper than tracing a big net
    genuine = os.path.join(GENUINE_CKPTS, name, "model.ckpt")
    if num_classes is None and os.path.exists(genuine + ".index"):
        slim.assign_from_checkpoint(genuine, net.variables_dict())
        return net, genuine
    set_formula_c(net.variables_dict(), ref["weights"]["wscale"])
    prefix = slim.save_checkpoint(net.variables_dict(), os.path.join(ckpt_dir, "model.ckpt-1"))
    return net, prefix


def write_image(path: str, height: int, width: int, seed: int = 0) -> str:
    """A smooth, seeded RGB test image (PNG or JPEG by extension)."""
    y, x = np.mgrid[0:height, 0:width]
    rs = np.random.RandomState(seed)
    channels = [(np.sin(x * rs.uniform(0.05, 0.3) + y * rs.uniform(0.05, 0.3) + c) + 1) * 127.5
                for c in range(3)]
    Image.fromarray(np.stack(channels, -1).astype(np.uint8)).save(path)
    return path


def encoded_png(height: int, width: int, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    rs = np.random.RandomState(seed)
    Image.fromarray((rs.rand(height, width, 3) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def write_labels(path: str, num_classes: int) -> str:
    with open(path, "w") as f:
        f.writelines(f"{i}:class_{i}\n" for i in range(num_classes))
    return path


def run_frozen(graph_def: tf.compat.v1.GraphDef, output: str, images: np.ndarray) -> np.ndarray:
    """Runs a frozen GraphDef with only `input` fed, once: without Grappler's rewrites."""
    return graph_runner(graph_def, "input", output, optimize=False)(images)


def parse_top_k(stdout: str) -> list[tuple[str, int, float]]:
    """`label (index): score` lines → [(label, index, score)]."""
    rows = []
    for line in stdout.strip().splitlines():
        head, score = line.rsplit(": ", 1)
        label, index = head.rsplit(" (", 1)
        rows.append((label, int(index.rstrip(")")), float(score)))
    return rows


def build_label_image() -> str:
    """Builds bin/label_image, the build's default (kept while newer than its sources)."""
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", BUILD_SCRIPT], check=True, env=env, capture_output=True)
    return LABEL_IMAGE


def cxx_available() -> bool:
    return shutil.which(os.environ.get("CXX", "g++")) is not None
