"""Forward and forward+backward images/sec of the factory's nets, beside Keras 3's.

    python scripts/bench_nets.py --models=lenet,cifarnet,vgg_16,inception_v3 --batch_size=8

Each net runs at its default image size inside `tf.function`: a forward pass in
eval mode, and a training pass (forward in training mode, cross-entropy loss,
gradients of every trainable variable; no optimizer update). Where Keras 3 has
the same architecture (`slimcli.benchmark.keras_model`: keras.applications with
weights=None and a logits output, or a same-shape Sequential for lenet/cifarnet) it
runs in the same process with the same batch, input and loss. Figures are the
median over `--repeats` timed runs of `--steps` steps after `--warmup` steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from slimcli import nets  # noqa: E402
from slimcli.benchmark import keras_model  # noqa: E402
from slimcli.errors import SlimError  # noqa: E402

def images_per_sec(step: Callable[[], tf.Tensor], batch_size: int, warmup: int, steps: int,
                   repeats: int) -> float:
    """The median images/sec of `step` (one batch per call) over `repeats` timed runs."""
    for _ in range(warmup):
        step().numpy()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            out = step()
        out.numpy()  # waits for the last step
        rates.append(batch_size * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def _loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    logits = tf.reshape(logits, [tf.shape(logits)[0], -1])
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


def _steps_for(forward: Callable, train_forward: Callable, variables: Callable,
               images: tf.Tensor, labels: tf.Tensor, jit: bool) -> tuple[Callable, Callable]:
    """tf.functions for an eval forward pass and a forward+backward pass."""
    @tf.function(jit_compile=jit, autograph=False)
    def fwd():
        return tf.reduce_sum(forward(images))

    @tf.function(jit_compile=jit, autograph=False)
    def fwd_bwd():
        with tf.GradientTape() as tape:
            loss = _loss(train_forward(images), labels)
        grads = tape.gradient(loss, variables())
        return loss + tf.add_n([tf.reduce_sum(g) for g in grads if g is not None]) * 0.0

    return fwd, fwd_bwd


def ours(name: str, images: tf.Tensor, labels: tf.Tensor, jit: bool) -> tuple[Callable, Callable]:
    """The factory net `name` (trained-classes output, default arg scope)."""
    spec = nets.get_net_spec(name)
    fn = nets.get_network_fn(name, num_classes=spec.zoo_num_classes, is_training=True)
    fn.build(images.shape)
    return _steps_for(lambda x: fn(x, is_training=False)[0], lambda x: fn(x)[0],
                      lambda: fn.trainable_variables, images, labels, jit)


def keras_twin(name: str, images: tf.Tensor, labels: tf.Tensor,
               jit: bool) -> tuple[Callable, Callable] | None:
    """The Keras 3 model of the same architecture (slimcli.benchmark.keras_model), or None."""
    size, channels = images.shape[1], images.shape[3]
    model = keras_model(name, size, channels, nets.get_net_spec(name).zoo_num_classes)
    if model is None:
        return None
    return _steps_for(lambda x: model(x, training=False), lambda x: model(x, training=True),
                      lambda: model.trainable_variables, images, labels, jit)


def bench(name: str, args: argparse.Namespace) -> dict:
    """Images/sec of one net and its Keras twin: keys ours_fwd, ours_train, keras_fwd, keras_train."""
    size = nets.get_net_spec(name).default_image_size
    images = tf.random.stateless_uniform([args.batch_size, size, size, 3], seed=[0, 1],
                                         minval=-1, maxval=1)
    labels = tf.zeros([args.batch_size], tf.int32)
    timing = dict(batch_size=args.batch_size, warmup=args.warmup, steps=args.steps,
                  repeats=args.repeats)
    row = {"net": name, "size": size}
    candidates = [("ours", ours)] + ([] if args.no_keras else [("keras", keras_twin)])
    for label, build in candidates:
        steps = build(name, images, labels, args.xla)
        if steps is None:
            continue
        fwd, fwd_bwd = steps
        row[f"{label}_fwd"] = images_per_sec(fwd, **timing)
        row[f"{label}_train"] = images_per_sec(fwd_bwd, **timing)
    return row


def format_table(rows: list[dict]) -> str:
    """A markdown table of the rows (— where Keras has no such net)."""
    num = lambda v: "—" if v is None else f"{v:.1f}"
    ratio = lambda a, b: "—" if a is None or b is None else f"{a / b:.2f}"
    lines = ["| net | size | ours fwd | keras fwd | ours fwd+bwd | keras fwd+bwd "
             "| fwd ours/keras | fwd+bwd ours/keras |", "|---" * 8 + "|"]
    for r in rows:
        of, kf, ot, kt = (r.get(k) for k in ("ours_fwd", "keras_fwd", "ours_train", "keras_train"))
        lines.append(f"| {r['net']} | {r['size']} | {num(of)} | {num(kf)} | {num(ot)} | {num(kt)} "
                     f"| {ratio(of, kf)} | {ratio(ot, kt)} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="", help="comma-separated net names (default: all)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=3, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the median is shown")
    parser.add_argument("--xla", action="store_true", help="jit_compile the steps")
    parser.add_argument("--no_keras", action="store_true", help="skip the Keras models")
    args = parser.parse_args(argv)
    for flag in ("batch_size", "steps", "repeats"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1. Received: --{flag}={getattr(args, flag)}")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    names = [n for n in args.models.split(",") if n] or nets.list_nets()
    try:
        for name in names:
            nets.get_net_spec(name)
    except SlimError as err:
        sys.exit(f"bench_nets: {err}")
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs visible, batch {args.batch_size}, "
          f"median of {args.repeats} x {args.steps} steps after {args.warmup} warm-up steps"
          f"{', XLA' if args.xla else ''}", flush=True)
    rows = []
    for name in names:
        rows.append(bench(name, args))
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
