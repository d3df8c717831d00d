"""What one slim-train step does around its kernels, per precision: op counts, dtypes, time shares.

    python scripts/profile_step.py --model_name=resnet_v1_50 --precision=bfloat16 --batch_size=16
    python scripts/profile_step.py --model_name=mobilenet_v1 --precision=float32,bfloat16 \
        --batch_size=4 --image_size=160

For each precision it builds the real slim-train step (`slimcli.train.setup_training`,
synthetic data, RMSProp as slim-benchmark uses), and prints:

* the step's graph (the traced `tf.function`, before Grappler): how many ops of each kind
  (Cast, batch norm, layout Transpose, optimizer updates), the dtype each matrix op
  (Conv2D, MatMul, depthwise, their gradients) computes in, and which op types produce
  activation-sized float32 tensors in a reduced-precision step (what falls back to float32);
* the TensorFlow profiler's trace of `--steps` steps after `--warmup` steps: kernel time
  per op type and dtype, and its share of all kernel time, grouped into matrix ops, casts,
  batch norm, optimizer update and the rest. Names in the trace are the executed kernels
  (after Grappler and oneDNN rewrites, e.g. `_FusedConv2D`), matched to the graph by name
  for their dtype.

It also prints the host's matrix units (CPU flags or GPU). Keep batches small on a CPU
without bf16 units: bf16 is emulated there and runs several times slower than float32.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from slimcli import precision as precision_lib  # noqa: E402
from slimcli.errors import SlimError  # noqa: E402

MATRIX_OPS = ("Conv2D", "MatMul", "DepthwiseConv2dNative", "BatchMatMul", "Einsum")
BATCH_NORM_OPS = ("FusedBatchNorm", "BatchNorm")
GROUPS = (("matrix", MATRIX_OPS), ("cast", ("Cast",)), ("batch norm", BATCH_NORM_OPS),
          ("transpose", ("Transpose",)), ("optimizer", ("ResourceApply", "ApplyRMSProp")))
ACTIVATION_ELEMENTS = 4096  # per image: a batch-first tensor this big is an activation


def group_of(op_type: str) -> str:
    """The group an op type's time is reported under (matrix, cast, batch norm, ...)."""
    for group, keys in GROUPS:
        if any(key in op_type for key in keys):
            return group
    return "other"


def op_dtype(node) -> str:
    """The dtype an op computes in: its `T` attr, else its first output's (`?` when unknown)."""
    if node.op == "Cast":
        return "->" + tf.as_dtype(node.attr["DstT"].type).name
    for key in ("T", "dtype"):
        if key in node.attr and node.attr[key].type:
            return tf.as_dtype(node.attr[key].type).name
    return "?"


def graph_nodes(concrete) -> dict:
    """Every node of the step's graph and of the functions it calls, by name."""
    graph_def = concrete.graph.as_graph_def()
    nodes = {n.name: n for n in graph_def.node}
    for function in graph_def.library.function:
        nodes.update({n.name: n for n in function.node_def})
    return nodes


def _is_float32_activation(tensor: tf.Tensor, batch_size: int) -> bool:
    """A float32 tensor with the batch as first dimension and ACTIVATION_ELEMENTS an image."""
    shape = tensor.shape
    return tensor.dtype == tf.float32 and shape.is_fully_defined() and shape.rank >= 2 and \
        shape[0] == batch_size and shape.num_elements() >= ACTIVATION_ELEMENTS * batch_size


def graph_stats(concrete, batch_size: int) -> dict:
    """Op counts and dtypes of the traced step (before Grappler)."""
    graph = concrete.graph
    by_type = collections.Counter()
    matrix = collections.Counter()
    casts = collections.Counter()
    float32_big = collections.Counter()
    for op in graph.get_operations():
        by_type[op.type] += 1
        if op.type == "Cast":
            casts[f"{op.get_attr('SrcT').name}->{op.get_attr('DstT').name}"] += 1
        if any(key in op.type for key in MATRIX_OPS):
            matrix[(op.type, op.outputs[0].dtype.name)] += 1
        if op.outputs and op.type != "IteratorGetNext" and \
                _is_float32_activation(op.outputs[0], batch_size):
            float32_big[op.type] += 1
    return {"ops": sum(by_type.values()), "by_type": by_type, "matrix": matrix, "casts": casts,
            "float32_activations": float32_big}


def trace_stats(step, iterator, steps: int, nodes: dict) -> tuple[dict, float]:
    """Kernel time (microseconds) per (op type, dtype) over `steps` profiled steps, and wall s."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    space = xplane_pb2.XSpace()
    with tempfile.TemporaryDirectory(prefix="profile_step_") as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(steps):
            float(step(iterator)["total_loss"])
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
        if not paths:
            raise SlimError("the profiler wrote no trace; is another profiler session running "
                            "in this process?")
        with open(paths[-1], "rb") as f:
            space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                node_name, sep, op_type = name.rpartition(":")
                if not sep or not op_type or " " in op_type or "::" in name:
                    continue
                node = nodes.get(node_name)
                dtype = op_dtype(node) if node is not None else "?"
                times[(op_type, dtype)] += event.duration_ps / 1e6
    return times, wall


def profile(model_name: str, precision: str, batch_size: int, image_size: int | None,
            warmup: int, steps: int) -> dict:
    """Builds the slim-train step of `model_name` in `precision`, traces and profiles it."""
    from slimcli.distribute import make_strategy
    from slimcli.train import TrainConfig, setup_training
    config = TrainConfig(model_name=model_name, batch_size=batch_size,
                         train_image_size=image_size, precision=precision, synthetic_data=True,
                         synthetic_num_classes=1000, seed=0, progress_bar=False)
    config.validate()
    run = setup_training(config, make_strategy())
    iterator = run.iterator()
    for _ in range(max(warmup, 1)):
        float(run.step(iterator)["total_loss"])
    concrete = run.step._step.get_concrete_function(iterator)
    nodes = graph_nodes(concrete)
    times, wall = trace_stats(run.step, iterator, steps, nodes)
    return {"precision": config.resolved().precision, "graph": graph_stats(concrete, batch_size),
            "times": times, "wall": wall / steps}


def report(name: str, result: dict, top: int) -> None:
    """Prints one precision's figures."""
    g = result["graph"]
    by_type = g["by_type"]
    print(f"\n== {name}, {result['precision']}: {result['wall'] * 1000:.0f} ms a profiled step "
          f"(wall, profiler on)")
    bn = sum(n for t, n in by_type.items() if any(k in t for k in BATCH_NORM_OPS))
    print(f"graph (traced, before Grappler): {g['ops']} ops; Cast {by_type['Cast']} "
          f"({', '.join(f'{k} {n}' for k, n in sorted(g['casts'].items())) or 'none'}); "
          f"batch norm {bn} ("
          + ", ".join(f"{t} {n}" for t, n in sorted(by_type.items())
                      if any(k in t for k in BATCH_NORM_OPS)) + "); "
          f"Transpose {by_type['Transpose']}; optimizer updates "
          f"{sum(n for t, n in by_type.items() if group_of(t) == 'optimizer')}")
    print("matrix ops by dtype: " + ", ".join(
        f"{t} {d} {n}" for (t, d), n in sorted(g["matrix"].items())))
    big = g["float32_activations"]
    print(f"ops with an activation-sized float32 output: {sum(big.values())} ("
          + ", ".join(f"{t} {n}" for t, n in big.most_common(8)) + ")")
    times = result["times"]
    total = sum(times.values()) or 1.0
    groups = collections.Counter()
    for (op_type, _), us in times.items():
        groups[group_of(op_type)] += us
    print(f"kernel time {total / 1000:.1f} ms (summed over threads) by group: " + ", ".join(
        f"{grp} {us / total:.0%}" for grp, us in groups.most_common()))
    print(f"top {top} executed op types (kernel, dtype, share, ms):")
    for (op_type, dtype), us in times.most_common(top):
        print(f"  {op_type:34s} {dtype:9s} {us / total:6.1%} {us / 1000:9.1f}")


def onednn() -> str:
    """Whether TensorFlow runs oneDNN kernels here (by default only on CPUs with AVX512-VNNI,
    AVX512-BF16 or AMX; TF_ENABLE_ONEDNN_OPTS=0/1 overrides); Eigen's kernels otherwise."""
    from tensorflow.python.util import _pywrap_util_port
    on = _pywrap_util_port.IsMklEnabled()
    source = f"TF_ENABLE_ONEDNN_OPTS={os.environ['TF_ENABLE_ONEDNN_OPTS']}" \
        if "TF_ENABLE_ONEDNN_OPTS" in os.environ else "TensorFlow's default for this CPU"
    return f"oneDNN kernels {'on' if on else 'off (Eigen kernels)'} ({source})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_name", default="resnet_v1_50")
    parser.add_argument("--precision", default="float32,bfloat16",
                        help="comma-separated precisions, profiled in turn (auto allowed)")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--image_size", type=int, default=None, help="default: the net's")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=1, help="profiled steps")
    parser.add_argument("--top", type=int, default=12, help="op types listed per precision")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    precisions = [p for p in args.precision.split(",") if p]
    try:
        for p in precisions:
            precision_lib.validate(p)
        if args.batch_size < 1 or args.steps < 1:
            raise SlimError(f"--batch_size={args.batch_size} and --steps={args.steps} must be "
                            f"at least 1.")
        print(f"TensorFlow {tf.__version__}; {precision_lib.describe_units()}; {onednn()}")
        for p in precisions:
            report(args.model_name, profile(args.model_name, p, args.batch_size,
                                            args.image_size, args.warmup, args.steps), args.top)
    except SlimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
