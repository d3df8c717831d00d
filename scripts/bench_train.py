"""Training throughput of slimcli beside Keras 3 `model.fit`, same architecture and batch.

    python scripts/bench_train.py                       # the five nets of the issue
    python scripts/bench_train.py --nets=lenet,cifarnet --steps=30
    python scripts/bench_train.py --nets=resnet_v1_50 --mixed_precision --jit_compile --no_keras

slimcli runs the real slim-train step (RMSProp, the original default, on
generated data, loss fetched every step as the training loop does). Keras runs
`model.fit` on the keras.applications model (MobileNet, ResNet50,
InceptionV3, weights=None) or a same-shape Sequential for lenet/cifarnet.
Nets not in this build's registry are reported as missing. Prints a table and
writes JSON with --output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tensorflow as tf  # noqa: E402

from slimcli import optimization, slim  # noqa: E402
from slimcli.nets import nets_factory  # noqa: E402
from slimcli.slim import learning  # noqa: E402
from slimcli.train_data import synthetic_dataset  # noqa: E402

# net: (image size, batch, classes, keras builder name)
CASES = {
    "lenet": (28, 64, 10, "lenet"),
    "cifarnet": (32, 64, 10, "cifarnet"),
    "mobilenet_v1": (224, 32, 1001, "MobileNet"),
    "resnet_v1_50": (224, 16, 1000, "ResNet50"),
    "inception_v3": (299, 16, 1001, "InceptionV3"),
}
RMSPROP = {"rmsprop_decay": 0.9, "rmsprop_momentum": 0.9, "opt_epsilon": 1.0}


def _timed(run_step, steps: int, warmup: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) per step after `warmup` steps."""
    for _ in range(warmup):
        run_step()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        run_step()
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps


def bench_slim(name: str, size: int, batch: int, classes: int, steps: int, warmup: int,
               dtype: tf.DType, jit_compile: bool) -> tuple[float, float]:
    """(images per wall second, images per CPU second) of the slim-train step for `name`."""
    net = nets_factory.get_network_fn(name, classes, weight_decay=0.00004, is_training=True)
    net.build([None, size, size, 3], dtype=dtype)

    def loss_fn(data):
        logits, end_points = net(tf.cast(data[0], dtype))
        onehot = tf.one_hot(data[1], classes)
        if "AuxLogits" in end_points:
            slim.losses.softmax_cross_entropy(end_points["AuxLogits"], onehot, weights=0.4)
        slim.losses.softmax_cross_entropy(logits, onehot)
    scale = learning.DynamicLossScale() if dtype == tf.float16 else None
    step = learning.create_train_op(loss_fn, optimization.make_optimizer("rmsprop", RMSPROP),
                                    net, learning_rate=0.01, loss_scale=scale,
                                    jit_compile=jit_compile)
    it = iter(synthetic_dataset(batch, size, classes))
    wall, cpu = _timed(lambda: float(step(it)["total_loss"]), steps, warmup)
    return batch / wall, batch / cpu


def _keras_model(kind: str, size: int, classes: int):
    import keras
    layers = keras.layers
    if kind == "lenet":
        return keras.Sequential([
            keras.Input((size, size, 3)), layers.Conv2D(32, 5, padding="same", activation="relu"),
            layers.MaxPool2D(2), layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.MaxPool2D(2), layers.Flatten(), layers.Dense(1024, activation="relu"),
            layers.Dropout(0.5), layers.Dense(classes)])
    if kind == "cifarnet":
        def lrn():
            return layers.Lambda(lambda x: tf.nn.local_response_normalization(
                x, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75))
        return keras.Sequential([
            keras.Input((size, size, 3)), layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.MaxPool2D(2, 2), lrn(),
            layers.Conv2D(64, 5, padding="same", activation="relu"), lrn(),
            layers.MaxPool2D(2, 2), layers.Flatten(),
            layers.Dense(384, activation="relu"), layers.Dropout(0.5),
            layers.Dense(192, activation="relu"), layers.Dense(classes)])
    builder = getattr(keras.applications, kind)
    return builder(weights=None, input_shape=(size, size, 3), classes=classes,
                   classifier_activation=None)


def bench_keras(kind: str, size: int, batch: int, classes: int, steps: int,
                warmup: int) -> tuple[float, float]:
    """(images per wall second, per CPU second) of Keras 3 `model.fit` on the same shapes."""
    import keras
    model = _keras_model(kind, size, classes)
    model.compile(optimizer=keras.optimizers.RMSprop(0.01, rho=0.9, momentum=0.9, epsilon=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = synthetic_dataset(batch, size, classes)
    model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0)
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    images = batch * steps
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nets", default=",".join(CASES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--mixed_precision", action="store_true")
    parser.add_argument("--mixed_precision_dtype", default="float16")
    parser.add_argument("--jit_compile", action="store_true")
    parser.add_argument("--no_keras", action="store_true")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    dtype = tf.as_dtype(args.mixed_precision_dtype) if args.mixed_precision else tf.float32
    available = set(nets_factory.list_nets())
    results = []
    for name in args.nets.split(","):
        size, batch, classes, kind = CASES[name]
        row = {"net": name, "image_size": size, "batch": batch, "dtype": dtype.name,
               "jit_compile": args.jit_compile}
        if name not in available:
            row["slimcli"] = "missing"
        else:
            wall, cpu = bench_slim(name, size, batch, classes, args.steps, args.warmup, dtype,
                                   args.jit_compile)
            row.update(slimcli=round(wall, 1), slimcli_per_cpu_s=round(cpu, 1))
            if not args.no_keras:
                wall, cpu = bench_keras(kind, size, batch, classes, args.steps, args.warmup)
                row.update(keras3_fit=round(wall, 1), keras3_fit_per_cpu_s=round(cpu, 1))
        results.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'net':14s} {'size':>5s} {'batch':>5s} {'slimcli img/s':>14s} {'keras3 img/s':>13s}"
          f" {'slimcli img/cpu-s':>18s} {'keras3 img/cpu-s':>17s}")
    for r in results:
        print(f"{r['net']:14s} {r['image_size']:5d} {r['batch']:5d} {str(r['slimcli']):>14s} "
              f"{str(r.get('keras3_fit', '-')):>13s} {str(r.get('slimcli_per_cpu_s', '-')):>18s}"
              f" {str(r.get('keras3_fit_per_cpu_s', '-')):>17s}")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"device": _device(), "results": results}, f, indent=2)
    return 0


def _device() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return f"CPU x{os.cpu_count()}"


if __name__ == "__main__":
    sys.exit(main())
