"""Benchmark: quantization-aware training against post-training int8, through TFLite.

On a converted folder dataset (real photos: e.g. the 3,670 flower_photos converted with
`slim-download --dataset_name=folder --validation_fraction=0.2`), this script

  1. trains the stages --train names: `float`, MODEL in float from scratch; then from that
     checkpoint, with the same schedule and number of steps, `qat` fine-tunes it with
     `--quantize_delay` (quantization-aware training, as the original's contrib.quantize)
     and `float_ft` fine-tunes it in float (the float model of the same training budget);
  2. exports four TFLite models: the fine-tuned float net, its post-training int8
     quantization (`--tflite_quantize=int8`, calibrated on --calibration_steps training images,
     and on the default 20) and the fully integer model of the QAT checkpoint (`--quantize`,
     int8 in and out, no calibration);
  3. evaluates each through the TFLite interpreter on the validation split (top-1), beside
     the float checkpoints and the fake-quantized QAT checkpoint evaluated in TensorFlow;
  4. times the interpreter (`invoke`, inputs already quantized) of the float and the integer
     model on the same images, taking turns (float, integer, float, ...), and prints the
     median milliseconds per image and their ratio.

It prints the host's CPU, core count and load (`uptime`) before and after: compare figures of
one run only.

    python scripts/bench_qat.py --dataset_dir=/data/qat_flowers --work_dir=/tmp/qat_bench \
        --train=float,qat,float_ft
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from slimcli import slim  # noqa: E402
from slimcli.datasets import get_dataset  # noqa: E402
from slimcli.evaluate import EvalConfig, run_evaluation  # noqa: E402
from slimcli.export import ExportConfig, export  # noqa: E402
from slimcli.preprocessing import preprocessing_for_net  # noqa: E402
from slimcli.tflite_eval import TFLiteClassifier  # noqa: E402
from slimcli.train import TrainConfig, train  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset_dir", required=True, help="a converted folder dataset")
    parser.add_argument("--work_dir", required=True, help="train dirs and models go here")
    parser.add_argument("--model_name", default="mobilenet_v1_025")
    parser.add_argument("--image_size", type=int, default=128)
    parser.add_argument("--train", default="", help="stages to train first: float,qat,float_ft")
    parser.add_argument("--float_steps", type=int, default=6000)
    parser.add_argument("--qat_steps", type=int, default=3000)
    parser.add_argument("--quantize_delay", type=int, default=500)
    parser.add_argument("--quantize_freeze_bn_delay", type=int, default=2000)
    parser.add_argument("--calibration_steps", type=int, default=300)
    parser.add_argument("--speed_rounds", type=int, default=15)
    parser.add_argument("--speed_images", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    return parser.parse_args()


def host() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def train_runs(args, float_dir: str, qat_dir: str, float_ft_dir: str) -> None:
    """The float run from scratch, then the QAT and the float fine-tuning of its checkpoint."""
    common = dict(model_name=args.model_name, dataset_name="folder", dataset_dir=args.dataset_dir,
                  train_image_size=args.image_size, batch_size=32, optimizer="momentum",
                  label_smoothing=0.1, batch_norm_decay=0.99, num_preprocessing_threads=2,
                  save_interval_secs=900, log_every_n_steps=100, seed=1, progress_bar=False)
    stages = args.train.split(",")
    if "float" in stages:
        train(TrainConfig(train_dir=float_dir, max_number_of_steps=args.float_steps,
                          learning_rate=0.1, learning_rate_decay_type="cosine",
                          end_learning_rate=0.0, warmup_epochs=2, recompute_batch_norm_stats=50,
                          **common))
    fine_tune = dict(max_number_of_steps=args.qat_steps, checkpoint_path=float_dir,
                     learning_rate=0.005, learning_rate_decay_type="cosine",
                     end_learning_rate=0.0, **common)
    if "qat" in stages:
        train(TrainConfig(train_dir=qat_dir, quantize_delay=args.quantize_delay,
                          quantize_freeze_bn_delay=args.quantize_freeze_bn_delay, **fine_tune))
    if "float_ft" in stages:
        train(TrainConfig(train_dir=float_ft_dir, recompute_batch_norm_stats=50, **fine_tune))


def calibration_dir(args, work_dir: str) -> str:
    """A dataset folder holding only the training shards: PTQ calibrates on no eval image."""
    folder = os.path.join(work_dir, "calibration")
    os.makedirs(folder, exist_ok=True)
    train_files = set(get_dataset("folder", "train", args.dataset_dir).files)
    for name in os.listdir(args.dataset_dir):
        source = os.path.join(args.dataset_dir, name)
        is_record = name.endswith(".tfrecord") or "-of-" in name
        if (not is_record or source in train_files) and not os.path.exists(
                os.path.join(folder, name)):
            os.symlink(source, os.path.join(folder, name))
    return folder


def export_models(args, work_dir: str, float_ckpt: str, qat_ckpt: str) -> dict[str, str]:
    paths = {kind: os.path.join(work_dir, f"{kind}.tflite")
             for kind in ("float", "ptq", "ptq20", "qat")}
    common = dict(model_name=args.model_name, dataset_name="folder", image_size=args.image_size)
    export(ExportConfig(checkpoint_path=float_ckpt, tflite_file=paths["float"],
                        dataset_dir=args.dataset_dir, **common))
    for kind, steps in (("ptq", args.calibration_steps), ("ptq20", 20)):
        export(ExportConfig(checkpoint_path=float_ckpt, tflite_file=paths[kind],
                            tflite_quantize="int8", calibration_steps=steps,
                            dataset_dir=calibration_dir(args, work_dir), **common))
    export(ExportConfig(checkpoint_path=qat_ckpt, tflite_file=paths["qat"], quantize=True,
                        tflite_io_type="int8", dataset_dir=args.dataset_dir, **common))
    return paths


def top1(args, work_dir: str, **kwargs) -> tuple[float, int]:
    config = EvalConfig(model_name=args.model_name, dataset_name="folder",
                        dataset_dir=args.dataset_dir, dataset_split_name="validation",
                        eval_image_size=args.image_size, batch_size=50, progress=False,
                        eval_dir=os.path.join(work_dir, "eval"), **kwargs)
    results = run_evaluation(config)
    return 100.0 * results["eval/Accuracy"], results["num_examples"]


def speed_images(args) -> np.ndarray:
    """Preprocessed validation images, the input of the speed measurement."""
    import tensorflow as tf
    preprocess = preprocessing_for_net(args.model_name)
    files = get_dataset("folder", "validation", args.dataset_dir).files
    images = []
    for record in tf.data.TFRecordDataset(files).take(args.speed_images):
        example = tf.train.Example.FromString(record.numpy())
        encoded = example.features.feature["image/encoded"].bytes_list.value[0]
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        images.append(preprocess(image, args.image_size, args.image_size).numpy())
    return np.stack(images)


def speed(args, paths: dict[str, str]) -> dict[str, float]:
    """Median milliseconds per image of each model's interpreter, measured in turns on the
    same images (their input arrays made beforehand: the engines are compared, not numpy)."""
    images = speed_images(args)
    models = {kind: TFLiteClassifier(paths[kind], num_threads=args.threads)
              for kind in ("float", "qat")}
    inputs = {kind: model.inputs(images) for kind, model in models.items()}
    for kind, model in models.items():
        for array in inputs[kind][:10]:  # warm up
            model.invoke(array)
    times: dict[str, list[float]] = {kind: [] for kind in models}
    for _ in range(args.speed_rounds):
        for kind, model in models.items():
            start = time.perf_counter()
            for array in inputs[kind]:
                model.invoke(array)
            times[kind].append(1000.0 * (time.perf_counter() - start) / len(images))
    return {kind: statistics.median(values) for kind, values in times.items()}


def main() -> None:
    args = parse_args()
    dirs = {stage: os.path.join(args.work_dir, stage) for stage in ("float", "qat", "float_ft")}
    print(f"host: {host()}; {load()}")
    if args.train:
        train_runs(args, dirs["float"], dirs["qat"], dirs["float_ft"])
    ckpts = {stage: slim.latest_checkpoint(folder) for stage, folder in dirs.items()}
    paths = export_models(args, args.work_dir, ckpts["float_ft"], ckpts["qat"])
    steps = f"+{args.qat_steps}"
    rows = [(f"float, {args.float_steps} steps (TensorFlow)",
             *top1(args, args.work_dir, checkpoint_path=ckpts["float"])),
            (f"float fine-tuned {steps} (TensorFlow)",
             *top1(args, args.work_dir, checkpoint_path=ckpts["float_ft"])),
            (f"QAT fine-tuned {steps}, fake quant (TensorFlow)",
             *top1(args, args.work_dir, checkpoint_path=ckpts["qat"], quantize=True))]
    names = {"float": f"float fine-tuned {steps}: float TFLite",
             "ptq": f"  post-training int8 ({args.calibration_steps} calibration images)",
             "ptq20": "  post-training int8 (20 calibration images)",
             "qat": f"QAT fine-tuned {steps}: integer TFLite"}
    for kind, path in paths.items():
        rows.append((names[kind], *top1(args, args.work_dir, tflite_file=path)))
    ms = speed(args, paths)
    print(f"\n{args.model_name} at {args.image_size}x{args.image_size}; data: "
          f"{args.dataset_dir} (validation split); host: {host()}; {load()}")
    print(f"{'model':50} {'top-1 %':>8} {'images':>7}")
    for name, accuracy, count in rows:
        print(f"{name:50} {accuracy:8.2f} {count:7d}")
    print(f"\nTFLite interpreter, {args.threads} thread(s), {args.speed_rounds} rounds of "
          f"{args.speed_images} images taking turns: float {ms['float']:.3f} ms/image, "
          f"integer {ms['qat']:.3f} ms/image, speed-up x{ms['float'] / ms['qat']:.2f}")
    sizes = {kind: os.path.getsize(path) / 1e6 for kind, path in paths.items()}
    print("model sizes: " + ", ".join(f"{kind} {size:.2f} MB" for kind, size in sizes.items()))


if __name__ == "__main__":
    main()
