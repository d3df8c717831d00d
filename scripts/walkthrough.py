"""The whole slimcli walkthrough, offline: data → train → eval → export → freeze → label_image.

Makes a small learnable image dataset (coloured shapes in class folders), then runs each
command of the user flow as a subprocess, exactly as a user would type it, printing the
command first so it can be copied:

    slim-download → slim-train → slim-eval → slim-export → slim-freeze →
    build label_image (C++) → label_image and slim-predict on one image

Where no C++ compiler is installed ($CXX, default g++), the label_image build and run are
skipped with a line that says so, and the rest runs as above.

Usage: python scripts/walkthrough.py [--workdir=walkthrough] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("circle", "square", "triangle", "cross")
IMAGE_SIZE = 28  # LeNet's input; LeNet's eval preprocessing crops/pads to 28x28


def draw_shape(shape: str, rng: np.random.RandomState, size: int = IMAGE_SIZE) -> Image.Image:
    """One image: a bright shape of random colour, size and place on a dark noisy background."""
    background = (rng.rand(size, size, 3) * 60).astype(np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    color = tuple(int(c) for c in rng.randint(120, 256, 3))
    r = rng.randint(6, 11)
    cx, cy = rng.randint(r + 1, size - r - 1, 2)
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "circle":
        draw.ellipse(box, fill=color)
    elif shape == "square":
        draw.rectangle(box, fill=color)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    else:
        w = max(2, r // 3)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=color)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=color)
    return image


def make_shapes_dataset(image_dir: str, images_per_class: int, seed: int = 0) -> None:
    """Writes `image_dir/<class>/<i>.png` (and a few JPEGs) for each class."""
    rng = np.random.RandomState(seed)
    for shape in CLASSES:
        os.makedirs(os.path.join(image_dir, shape), exist_ok=True)
        for i in range(images_per_class):
            image = draw_shape(shape, rng)
            ext = "jpg" if i % 5 == 0 else "png"
            image.save(os.path.join(image_dir, shape, f"{shape}_{i:04d}.{ext}"))


def command_path(name: str) -> str:
    """The console script `name` next to this Python (the venv's bin/), else on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), name)
    return local if os.path.exists(local) else (shutil.which(name) or name)


def cxx_compiler() -> str | None:
    """The C++ compiler the label_image build would use ($CXX, default g++), if installed."""
    return shutil.which(os.environ.get("CXX", "g++"))


def run(argv: list[str], capture: bool = False, env: dict | None = None) -> str:
    """Prints the command, runs it, stops the walkthrough if it fails."""
    shown = [os.path.basename(argv[0]) if argv[0].startswith(os.path.dirname(sys.executable))
             else argv[0]] + argv[1:]
    print(f"\n$ {' '.join(shlex.quote(a) for a in shown)}", flush=True)
    start = time.time()
    result = subprocess.run(argv, text=True, stdout=subprocess.PIPE if capture else None,
                            env=None if env is None else {**os.environ, **env})
    if result.returncode != 0:
        raise SystemExit(f"walkthrough: `{shown[0]}` failed with status {result.returncode}")
    if capture:
        print(result.stdout, end="", flush=True)
    print(f"  ({time.time() - start:.1f} s)", flush=True)
    return result.stdout if capture else ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=os.path.join(ROOT, "walkthrough"))
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few steps (the test suite's setting)")
    parser.add_argument("--images_per_class", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--min_accuracy", type=float, default=None,
                        help="fail if the evaluated accuracy is lower (default 0.9; 0 with --quick)")
    parser.add_argument("--bin_dir", default=os.path.join(ROOT, "bin"),
                        help="where to build the C++ label_image (default: bin/)")
    parser.add_argument("--summary_json", default="",
                        help="also write accuracy, both top-1 labels and the time here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    per_class = args.images_per_class or (12 if args.quick else 400)
    steps = args.steps or (30 if args.quick else 2000)
    min_accuracy = args.min_accuracy if args.min_accuracy is not None else \
        (0.0 if args.quick else 0.9)
    work = os.path.abspath(args.workdir)
    if os.path.exists(work):
        shutil.rmtree(work)
    images, data = os.path.join(work, "shapes"), os.path.join(work, "data")
    train, evals = os.path.join(work, "train"), os.path.join(work, "eval")
    began = time.time()

    print(f"1. Making {per_class} images of each of {', '.join(CLASSES)} in {images}")
    make_shapes_dataset(images, per_class)
    run([command_path("slim-download"), "--dataset_name=folder", f"--image_dir={images}",
         f"--dataset_dir={data}", "--validation_fraction=0.2"])
    run([command_path("slim-train"), "--model_name=lenet", "--dataset_name=folder",
         f"--dataset_dir={data}", f"--train_dir={train}", "--optimizer=adam",
         "--learning_rate=0.002", "--learning_rate_decay_type=fixed", "--weight_decay=0",
         "--batch_size=32", f"--max_number_of_steps={steps}", "--log_every_n_steps=100",
         "--save_summaries_secs=60"])
    results_file = os.path.join(evals, "results.json")
    run([command_path("slim-eval"), "--model_name=lenet", "--dataset_name=folder",
         f"--dataset_dir={data}", "--dataset_split_name=validation",
         f"--checkpoint_path={train}", f"--eval_dir={evals}", f"--output_json={results_file}"])
    with open(results_file) as f:
        accuracy = json.load(f)["eval/Accuracy"]
    graph, frozen = os.path.join(work, "lenet_inf_graph.pb"), os.path.join(work, "lenet_frozen.pb")
    run([command_path("slim-export"), "--model_name=lenet", "--dataset_name=folder",
         f"--dataset_dir={data}", f"--output_file={graph}"])
    run([command_path("slim-freeze"), f"--input_graph={graph}", "--input_binary=true",
         f"--input_checkpoint={os.path.join(train, f'model.ckpt-{steps}')}",
         f"--output_graph={frozen}", "--output_node_names=Predictions/Reshape_1"])
    image = os.path.join(work, "test_triangle.png")
    draw_shape("triangle", np.random.RandomState(12345)).save(image)
    labels = os.path.join(data, "labels.txt")
    cpp_top1 = label_image_top1(args.bin_dir, frozen, labels, image)
    py_out = run([command_path("slim-predict"), f"--graph={frozen}", f"--labels={labels}",
                  f"--image={image}", "--model_name=lenet"], capture=True)
    summary = {"accuracy": accuracy, "label_image_top1": cpp_top1,
               "slim_predict_top1": _top_label(py_out), "seconds": round(time.time() - began, 1),
               "workdir": work}
    print(f"\nValidation accuracy: {accuracy:.1%} (lenet, {steps} steps)")
    said = "label_image was skipped" if cpp_top1 is None else f"label_image says {cpp_top1!r}"
    print(f"{said} for {image} (slim-predict: {summary['slim_predict_top1']!r}); "
          f"whole walkthrough {summary['seconds']} s")
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=2)
    _check_top1(cpp_top1, summary["slim_predict_top1"])
    if accuracy < min_accuracy:
        raise SystemExit(f"walkthrough: accuracy {accuracy:.3f} is below {min_accuracy}")
    return summary


def label_image_top1(bin_dir: str, frozen: str, labels: str, image: str) -> str | None:
    """Builds the C++ label_image into `bin_dir` and runs it on `image`: its top-1 label.

    None, after a line that says why, where no C++ compiler is installed.
    """
    if cxx_compiler() is None:
        print(f"\n(skipping the C++ label_image build and run: no C++ compiler "
              f"{os.environ.get('CXX', 'g++')!r}; install g++ or set CXX=... to include them)",
              flush=True)
        return None
    # The build reads TensorFlow's headers and libraries from this Python's TensorFlow.
    label_image = os.path.join(bin_dir, "label_image")
    run(["bash", os.path.join(ROOT, "scripts", "build_label_image.sh"), label_image],
        env={"PYTHON": sys.executable})
    cpp_out = run([label_image, f"--graph={frozen}",
                   f"--labels={labels}", f"--image={image}", "--input_layer=input",
                   "--output_layer=Predictions/Reshape_1", f"--input_width={IMAGE_SIZE}",
                   f"--input_height={IMAGE_SIZE}", "--input_mean=128", "--input_std=128"],
                  capture=True)
    return _top_label(cpp_out)


def _check_top1(cpp_top1: str | None, py_top1: str | None) -> None:
    """slim-predict names a class, and label_image (where it ran) names the same one."""
    if py_top1 not in CLASSES:
        raise SystemExit(f"walkthrough: slim-predict's top-1 {py_top1!r} is not a class of "
                         f"{', '.join(CLASSES)}")
    if cpp_top1 is not None and cpp_top1 != py_top1:
        raise SystemExit(f"walkthrough: label_image's top-1 {cpp_top1!r} is not slim-predict's "
                         f"{py_top1!r}")


def _top_label(output: str) -> str | None:
    """The label of the first `label (index): score` line."""
    for line in output.splitlines():
        if "):" in line and "(" in line:
            return line.rsplit(" (", 1)[0].strip()
    return None


if __name__ == "__main__":
    main()
