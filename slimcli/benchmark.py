"""slim-benchmark as a library: how fast a net trains and infers here, beside Keras 3.

    result = run_benchmark(BenchmarkConfig(model_name="resnet_v1_50", mode="train",
                                           batch_size=16, compare_keras=True))
    result["train"]["images_per_sec"]         # median of the timed repeats

Modes: `train` times the real slim-train step (the same `setup_training` that
`slim-train` runs: forward, loss, backward, RMSProp update, batch-norm updates,
the loss fetched every step as the training loop does); `inference` times the
eval-mode forward pass in a `tf.function`; `input` times the training input
pipeline alone (needs `--data=DATASET_DIR`); `all` runs each that applies. Every
figure is the median over `repeats` timed runs of `steps` steps after `warmup`
steps, with the spread (min, max). `compare_keras` runs the keras.applications
model of the same architecture (or a same-shape Sequential for lenet/cifarnet)
in the same process under the same batch, precision, XLA and strategy, and
reports our rate over Keras's: `model.fit` for train, `model.predict` for
inference. `compare_synthetic` (with `data=DIR`) times the same training step on
generated data, to show what the input pipeline costs; each side's input is
restarted before its timed run and stopped during the other's, so that
neither prepares batches while the other is timed. Compared sides take turns
timed run by timed run, and each ratio is the median of the per-repeat ratios,
so a shared host's drift during the run cancels out.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import resource
import statistics
import time
from typing import Any, Callable

import tensorflow as tf

from slimcli import fileio
from slimcli import nets
from slimcli import precision as precision_lib
from slimcli.config import option
from slimcli.errors import SlimError
from slimcli.precision import PRECISION_HELP

__all__ = ["BenchmarkConfig", "MODES", "KERAS_EQUIVALENTS", "run_benchmark", "format_result",
           "model_flops", "measured_peak_gflops", "keras_model"]

log = logging.getLogger("slimcli.benchmark")

MODES = ("train", "inference", "input", "all")

# Our net -> (keras.applications class, its keyword arguments): the same architecture,
# from each net's registry entry (`NetSpec.keras_twin`).
KERAS_EQUIVALENTS: dict[str, tuple[str, dict]] = {
    name: spec.keras_twin for name, spec in nets.NETS_REGISTRY.items() if spec.keras_twin}


@dataclasses.dataclass
class BenchmarkConfig:
    """The settings of `slim-benchmark`; field names are the flag names, each field's help
    its flag's `--help` text."""
    model_name: str = option("inception_v3", "The net of the nets factory.")
    mode: str = option("all", "train: the slim-train step; inference: the eval forward pass; "
                              "input: the training input pipeline alone (needs --data); all: "
                              "each that applies.", choices=MODES)
    batch_size: int = option(32, "Images per step per replica.")
    image_size: int | None = option(None, "Height and width (default: the net's).")
    num_classes: int | None = option(None, "Logits of the net (default: its zoo checkpoint's; "
                                           "with --data, the dataset's).")
    num_clones: int = option(1, "Replicas under MirroredStrategy (GPUs).")
    clone_on_cpu: bool = option(False, "Put the clones on logical CPU devices.")
    mixed_precision: bool = option(False, "Compute in --mixed_precision_dtype.")
    mixed_precision_dtype: str = option("float16", "float16 (loss scaling) or bfloat16.")
    precision: str = dataclasses.field(default="float32", metadata={"help": PRECISION_HELP})
    jit_compile: bool = option(False, "Compile the steps with XLA.")
    data: str = option("synthetic", "synthetic (generated images), or a dataset_dir of "
                                    "converted TFRecords (read through the real input pipeline).")
    dataset_name: str | None = option(None, "With --data=DIR: the dataset (default: from its "
                                            "dataset.json).")
    dataset_split_name: str = option("train", "With --data=DIR: the split read.")
    decoded_cache_mb: int = option(1024, "With --data=DIR: as slim-train's (decode the images "
                                         "once into memory; 0 = stream the records).")
    decode_side: str = option("auto", "With --data=DIR: as slim-train's (auto, full or "
                                      "pixels: the shorter side photos are decoded down to).")
    warmup_steps: int = option(3, "Untimed steps first (tracing, autotuning).")
    steps: int = option(10, "Steps per timed run.")
    repeats: int = option(3, "Timed runs; the median is reported with min and max.")
    min_run_seconds: float = option(1.0, "A timed run takes more than --steps steps when they "
                                         "would last less than this (fast nets).")
    compare_keras: bool = option(False, "Also run the keras.applications model of the same "
                                         "architecture (fit / predict) in this process and print "
                                         "the ratio.")
    compare_synthetic: bool = option(False, "With --data=DIR: also time the same training step "
                                             "on generated data (taking turns) and print real / "
                                             "synthetic.")
    output_json: str | None = option(None, "Write every figure to this JSON file.")

    def validate(self) -> None:
        """Raises SlimError naming a bad value and the fix."""
        if self.mode not in MODES:
            raise SlimError(f"--mode={self.mode!r} is not one of {', '.join(MODES)}.")
        for name in ("batch_size", "steps", "repeats", "num_clones"):
            if getattr(self, name) < 1:
                raise SlimError(f"--{name} must be >= 1. Received: --{name}={getattr(self, name)}")
        if self.warmup_steps < 0:
            raise SlimError(f"--warmup_steps must be >= 0. Received: {self.warmup_steps}")
        if self.mode == "input" and self.synthetic:
            raise SlimError("--mode=input times the input pipeline and needs "
                            "--data=DATASET_DIR (converted TFRecords).")
        if self.compare_synthetic and self.synthetic:
            raise SlimError("--compare_synthetic times real data beside generated data and "
                            "needs --data=DATASET_DIR (converted TFRecords).")
        precision_lib.effective(self.precision, self.mixed_precision, self.mixed_precision_dtype)

    def resolved(self) -> "BenchmarkConfig":
        """This config with one concrete `precision` (`auto` resolved, the older flags folded in)."""
        return dataclasses.replace(self, mixed_precision=False, precision=precision_lib.resolve(
            self.precision, self.mixed_precision, self.mixed_precision_dtype))

    @property
    def dtype(self) -> tf.DType:
        """The compute dtype of a resolved config."""
        return precision_lib.compute_dtype(self.precision)

    @property
    def synthetic(self) -> bool:
        return self.data == "synthetic"

    @property
    def modes(self) -> list[str]:
        if self.mode != "all":
            return [self.mode]
        return ["train", "inference"] + ([] if self.synthetic else ["input"])


# ---------------------------------------------------------------- measuring
# A side of a comparison: `run(n)` runs n steps and waits for the device.
Runner = Callable[[int], Any]


def stepper(run_step: Callable[[], Any], sync: Callable[[Any], Any]) -> Runner:
    """A runner of `run_step`: n calls, then `sync` of the last output."""
    def run(n: int) -> None:
        out = None
        for _ in range(n):
            out = run_step()
        if out is not None:
            sync(out)
    return run


def steps_lasting(run: Runner, steps: int, min_run_seconds: float) -> int:
    """`steps`, or more when `steps` steps (timed on one) would last under `min_run_seconds`."""
    if min_run_seconds <= 0:
        return steps
    start = time.perf_counter()
    run(1)
    one = max(time.perf_counter() - start, 1e-6)
    return max(steps, math.ceil(min_run_seconds / one))


def time_interleaved(sides: dict[str, tuple[Runner, int]], steps: int,
                     repeats: int, prepare: Callable[[str], Any] | None = None) -> dict[str, dict]:
    """Timed runs of `steps` steps of every side, taking turns.

    `sides` maps a name to `(runner, images_per_step)`. Repeat r runs the
    sides in order, the next one in reverse order (A B, B A, ...), so a
    shared host speeding up or slowing down during the measurement hits every
    side alike: compare sides with `paired_ratio`. `prepare(name)`, when
    given, runs untimed before each timed run of side `name` (e.g. to start
    and warm up a fresh input iterator).

    Returns:
      Per side: `images_per_sec` (median), `min`, `max`, `step_time_ms` (at
      the median), `images_per_cpu_sec` (process CPU time, for shared
      machines), `rates` (per timed run, in repeat order) and `steps`.
    """
    rates = {name: [] for name in sides}
    cpu_rates = {name: [] for name in sides}
    names = list(sides)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            run, images_per_step = sides[name]
            if prepare is not None:
                prepare(name)
            start, cpu = time.perf_counter(), time.process_time()
            run(steps)
            wall, used = time.perf_counter() - start, time.process_time() - cpu
            rates[name].append(images_per_step * steps / wall)
            cpu_rates[name].append(images_per_step * steps / max(used, 1e-9))
    figures = {}
    for name, (_, images_per_step) in sides.items():
        median = statistics.median(rates[name])
        figures[name] = {"images_per_sec": median, "min": min(rates[name]),
                         "max": max(rates[name]), "step_time_ms": 1000.0 * images_per_step / median,
                         "images_per_cpu_sec": statistics.median(cpu_rates[name]),
                         "rates": rates[name], "steps": steps}
    return figures


def paired_ratio(ours: dict, theirs: dict) -> float:
    """Median over repeats of our rate / theirs in the same repeat (see `time_interleaved`)."""
    return statistics.median(a / b for a, b in zip(ours["rates"], theirs["rates"]))


def time_steps(run_step: Callable[[], Any], sync: Callable[[Any], Any], images_per_step: int,
               warmup: int, steps: int, repeats: int, min_run_seconds: float = 0.0) -> dict:
    """Images/sec of `run_step` over `repeats` timed runs of `steps` calls.

    `sync(output)` waits for the device (fetching a value); each timed run ends
    with it, so asynchronous work is counted. With `min_run_seconds`, a timed run
    takes more steps when `steps` would last less (fast nets time too noisily).

    Returns:
      The figures of `time_interleaved` for this one side.
    """
    run = stepper(run_step, sync)
    if warmup:
        run(warmup)
    steps = steps_lasting(run, steps, min_run_seconds)
    return time_interleaved({"": (run, images_per_step)}, steps, repeats)[""]


def peak_host_memory_mb() -> float:
    """The process's peak resident memory so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _gpus() -> list:
    return tf.config.list_logical_devices("GPU")


def _reset_device_memory() -> None:
    for device in _gpus():
        try:
            tf.config.experimental.reset_memory_stats(device.name)
        except (ValueError, tf.errors.OpError):
            pass


def peak_device_memory_mb() -> float | None:
    """The peak memory of the first GPU since the last reset (MiB); None without a GPU."""
    gpus = _gpus()
    if not gpus:
        return None
    return tf.config.experimental.get_memory_info(gpus[0].name)["peak"] / 2**20


def model_flops(forward: Callable, input_shape: list[int], dtype: tf.DType = tf.float32) -> int:
    """Floating-point operations of one call of `forward` on `input_shape` (from its graph).

    TensorFlow's profiler counts them; its FLOP rules call a TF1 helper
    (`tensor_shape_from_node_def_name`) that logs a deprecation warning on every
    net, which says nothing to a user: deprecation warnings are silenced for
    this call only.
    """
    from tensorflow.python.profiler import model_analyzer, option_builder
    from tensorflow.python.util import deprecation
    concrete = tf.function(forward, autograph=False).get_concrete_function(
        tf.TensorSpec(input_shape, dtype))
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    with deprecation.silence():
        return int(model_analyzer.profile(concrete.graph, options=options).total_float_ops)


def measured_peak_gflops(dtype: tf.DType = tf.float32, seconds: float = 1.0) -> float:
    """This machine's matmul rate (GFLOP/s): the yardstick for the FLOP fraction."""
    n = 4096 if _gpus() else 1024
    a = tf.random.uniform([n, n], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b)[0, :1], tf.float32)))
    matmul().numpy()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(4):
            out = matmul()
        out.numpy()
        best = max(best, 4 * 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return best


# ---------------------------------------------------------------- slimcli's side
def _train_config(config: BenchmarkConfig, num_classes: int, synthetic: bool):
    from slimcli.train import TrainConfig  # its defaults: slim-train's RMSProp and settings
    values = dict(model_name=config.model_name, batch_size=config.batch_size,
                  train_image_size=config.image_size, num_clones=config.num_clones,
                  clone_on_cpu=config.clone_on_cpu, precision=config.precision,
                  jit_compile=config.jit_compile, seed=0, progress_bar=False)
    if synthetic:
        values.update(synthetic_data=True, synthetic_num_classes=num_classes)
    else:
        values.update(dataset_name=_dataset_name(config), dataset_dir=config.data,
                      dataset_split_name=config.dataset_split_name,
                      decoded_cache_mb=config.decoded_cache_mb, decode_side=config.decode_side)
    return TrainConfig(**values)


def _dataset_name(config: BenchmarkConfig) -> str:
    if config.dataset_name:
        return config.dataset_name
    from slimcli.datasets.spec import read_descriptor
    if not os.path.isdir(config.data):
        raise SlimError(f"--data={config.data!r} is neither 'synthetic' nor a directory; pass "
                        f"--data=synthetic or the --dataset_dir of slim-download.")
    descriptor = read_descriptor(config.data)
    if descriptor is None:
        raise SlimError(f"--data={config.data} has no dataset.json; pass --dataset_name=NAME "
                        f"(flowers, cifar10, ...) too.")
    return descriptor["name"]


class InputRunner:
    """A runner of the slim-train step over a training input, which it can restart.

    Two inputs in one process (`--compare_synthetic`) must not overlap: an
    iterator left running keeps preparing batches while the other side is
    timed, so its CPU is charged to that side and its batches come free to its
    own next run. `time_interleaved` restarts the side about to be timed
    (`restart`: a fresh iterator, warmed up untimed to its steady state) and
    stops the others (`stop`: the iterator dropped, its threads with it).
    """

    def __init__(self, run: Any, data: Any, warmup_steps: int):
        self._dataset = run.strategy.distribute_datasets_from_function(data.dataset_fn)
        self._step, self._warmup = run.step, warmup_steps
        self._iterator = None
        self.restart()

    def restart(self) -> None:
        self.stop()
        self._iterator = iter(self._dataset)
        self(self._warmup)

    def stop(self) -> None:
        self._iterator = None

    def __call__(self, n: int) -> None:
        loss = None
        for _ in range(n):
            loss = self._step(self._iterator)["total_loss"]
        if loss is not None:
            float(loss)


def _restarting(sides: dict[str, tuple[Runner, int]]) -> Callable[[str], None]:
    """`prepare(name)` for `time_interleaved`: stops every other side's input and restarts
    this side's (see `InputRunner`)."""
    def prepare(name: str) -> None:
        for other, (runner, _) in sides.items():
            if other != name and isinstance(runner, InputRunner):
                runner.stop()
        if isinstance(sides[name][0], InputRunner):
            sides[name][0].restart()
    return prepare


def train_runner(config: BenchmarkConfig, info: Any,
                 num_classes: int) -> tuple[Runner, Any, Callable[[], Runner]]:
    """The slim-train step (warmed up) as a runner, the training input it reads, and
    a maker of a runner of the same step (same net, same optimizer) on generated data."""
    from slimcli.nets import nets_factory
    from slimcli.train import setup_training
    from slimcli.train_data import make_train_data
    run = setup_training(_train_config(config, num_classes, config.synthetic), info)

    def runner_over(data: Any) -> Runner:
        return InputRunner(run, data, config.warmup_steps)

    def on_synthetic() -> Runner:
        generated = make_train_data(_train_config(config, run.data.num_classes, True),
                                    nets_factory.get_net_spec(config.model_name), info)
        return runner_over(generated)
    return runner_over(run.data), run.data, on_synthetic


def inference_runner(config: BenchmarkConfig, info: Any, num_classes: int, size: int,
                     channels: int, dtype: tf.DType) -> Runner:
    """The eval-mode forward pass (warmed up) on one fixed batch per replica."""
    from slimcli.nets import nets_factory
    net = nets_factory.get_network_fn(config.model_name, num_classes, is_training=False)
    strategy = info.strategy
    images = tf.random.stateless_uniform([config.batch_size, size, size, channels], seed=[0, 1],
                                         minval=-1, maxval=1)
    with strategy.scope():
        net.build([None, size, size, channels], dtype=dtype)

    @tf.function(jit_compile=config.jit_compile, autograph=False)
    def forward(x):
        return tf.reduce_sum(tf.cast(net(tf.cast(x, dtype))[0], tf.float32))

    step = tf.function(lambda: strategy.reduce(
        tf.distribute.ReduceOp.SUM, strategy.run(forward, args=(images,)), axis=None))
    runner = stepper(step, lambda out: out.numpy())
    runner(config.warmup_steps)
    return runner


def bench_input(config: BenchmarkConfig, data: Any) -> dict:
    """The training input pipeline alone (read, decode, preprocess, batch) of one replica."""
    iterator = iter(data.dataset_fn(tf.distribute.InputContext()))
    return time_steps(lambda: next(iterator), lambda batch: batch[1].numpy(), config.batch_size,
                      config.warmup_steps, config.steps, config.repeats, config.min_run_seconds)


# ---------------------------------------------------------------- Keras's side
def keras_model(name: str, size: int, channels: int, num_classes: int):
    """The Keras 3 model of the same architecture as our `name`, or None."""
    if name not in KERAS_EQUIVALENTS:
        return None
    import keras
    layers = keras.layers
    if name == "lenet":
        return keras.Sequential([
            keras.Input((size, size, channels)),
            layers.Conv2D(32, 5, padding="same", activation="relu"), layers.MaxPool2D(2),
            layers.Conv2D(64, 5, padding="same", activation="relu"), layers.MaxPool2D(2),
            layers.Flatten(), layers.Dense(1024, activation="relu"), layers.Dropout(0.5),
            layers.Dense(num_classes)])
    if name == "cifarnet":
        def lrn():
            return layers.Lambda(lambda x: tf.nn.local_response_normalization(
                x, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75))
        return keras.Sequential([
            keras.Input((size, size, channels)),
            layers.Conv2D(64, 5, padding="same", activation="relu"), layers.MaxPool2D(2, 2),
            lrn(), layers.Conv2D(64, 5, padding="same", activation="relu"), lrn(),
            layers.MaxPool2D(2, 2), layers.Flatten(), layers.Dense(384, activation="relu"),
            layers.Dropout(0.5), layers.Dense(192, activation="relu"), layers.Dense(num_classes)])
    cls_name, kwargs = KERAS_EQUIVALENTS[name]
    return getattr(keras.applications, cls_name)(
        weights=None, input_shape=(size, size, channels), classes=num_classes,
        classifier_activation=None, **kwargs)


def keras_runner(config: BenchmarkConfig, info: Any, mode: str, num_classes: int, size: int,
                 channels: int) -> tuple[Runner, int] | None:
    """Keras 3 `fit` (train) or `predict` (inference) of the twin under the same settings.

    Keras runs whole loops, so `run(n)` is one `fit` or `predict` call of n
    steps. Returns the warmed-up runner and the twin's forward FLOPs per image,
    or None where Keras has no twin.
    """
    import keras
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision_lib.keras_policy(config.precision))
    try:
        with info.strategy.scope():
            model = keras_model(config.model_name, size, channels, num_classes)
            if model is None:
                return None
            model.compile(optimizer=keras.optimizers.RMSprop(0.01, rho=0.9, momentum=0.9,
                                                             epsilon=1.0),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          jit_compile=config.jit_compile)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    batch = config.batch_size * info.num_replicas
    from slimcli.train_data import synthetic_dataset
    data = synthetic_dataset(batch, size, num_classes, channels)
    images = next(iter(data))[0]
    if mode == "train":
        run = lambda n: model.fit(data, steps_per_epoch=n, epochs=1, verbose=0,  # noqa
                                  shuffle=False)
    else:
        run = lambda n: model.predict(tf.data.Dataset.from_tensors(images).repeat(n),  # noqa
                                      verbose=0)
    run(max(config.warmup_steps, 1))
    flops = model_flops(lambda x: model(x, training=False), [1, size, size, channels])
    return run, flops


# ---------------------------------------------------------------- the run
def _machine() -> dict:
    gpus = tf.config.list_physical_devices("GPU")
    device = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
              if gpus else f"CPU ({os.cpu_count()} cores visible)")
    units = precision_lib.detect_matrix_units()
    return {"device": device, "tensorflow": tf.__version__, "gpus": len(gpus),
            "matrix_units": str(units), "cpu_flags": list(units.cpu_flags),
            "gpu_units": [str(gpu) for gpu in units.gpus]}


def _timed_mode(config: BenchmarkConfig, info: Any, ours: Runner,
                others: Callable[[], dict[str, Runner]]) -> dict:
    """Our figures (memory read before `others` are built), beside the others, interleaved."""
    images = config.batch_size * info.num_replicas
    memory = {"peak_host_memory_mb": peak_host_memory_mb(),
              "peak_device_memory_mb": peak_device_memory_mb()}
    sides = {"slimcli": (ours, images), **{name: (run, images) for name, run in others().items()}}
    steps = steps_lasting(ours, config.steps, config.min_run_seconds)
    timed = time_interleaved(sides, steps, config.repeats, _restarting(sides))
    figures = {**timed.pop("slimcli"), **memory}
    for name, other in timed.items():
        figures[name] = other
        figures[f"ratio_to_{name}"] = paired_ratio(figures, other)
    return figures


def run_benchmark(config: BenchmarkConfig, info: Any = None) -> dict:
    """Runs the modes of `config`; returns (and with `output_json` writes) the figures.

    Raises:
      SlimError: a bad setting, an unknown net or dataset.
    """
    from slimcli.distribute import make_strategy
    from slimcli.nets import nets_factory
    config.validate()
    config = config.resolved()
    spec = nets_factory.get_net_spec(config.model_name)
    info = info or make_strategy(config.num_clones, config.clone_on_cpu)
    dtype = config.dtype
    num_classes = config.num_classes or spec.zoo_num_classes
    result: dict[str, Any] = {"config": dataclasses.asdict(config), "machine": _machine(),
                              "num_replicas": info.num_replicas}

    def keras_side(mode: str) -> dict[str, Runner]:
        if not config.compare_keras:
            return {}
        side = keras_runner(config, info, mode, num_classes, size, channels)
        if side is None:
            result["keras"] = f"no keras.applications equivalent of {config.model_name}"
            return {}
        result["keras_gflops_per_image"] = side[1] / 1e9
        return {"keras": side[0]}

    float32_config = dataclasses.replace(config, precision="float32")
    data = None
    if "train" in config.modes:
        _reset_device_memory()
        ours, data, on_synthetic = train_runner(config, info, num_classes)
    elif "input" in config.modes:
        from slimcli.train_data import make_train_data
        data = make_train_data(_train_config(config, num_classes, config.synthetic), spec, info)
    if data is not None:
        num_classes, size, channels = data.num_classes, data.image_size, data.channels
    else:
        size, channels = config.image_size or spec.default_image_size, 3
        if not config.synthetic:
            from slimcli import datasets
            split = datasets.get_dataset(_dataset_name(config), config.dataset_split_name,
                                         config.data)
            num_classes = split.num_classes
    result.update(model_name=config.model_name, image_size=size, num_classes=num_classes)
    if "train" in config.modes:
        def train_others() -> dict[str, Runner]:
            others = keras_side("train")
            if dtype != tf.float32:
                others["float32"] = train_runner(float32_config, info, num_classes)[0]
            if config.compare_synthetic:
                others["synthetic"] = on_synthetic()
            return others
        result["train"] = _timed_mode(config, info, ours, train_others)
    if "inference" in config.modes:
        _reset_device_memory()
        ours = inference_runner(config, info, num_classes, size, channels, dtype)

        def inference_others() -> dict[str, Runner]:
            others = keras_side("inference")
            if dtype != tf.float32:
                others["float32"] = inference_runner(float32_config, info, num_classes, size,
                                                     channels, tf.float32)
            return others
        result["inference"] = _timed_mode(config, info, ours, inference_others)
    if "input" in config.modes:
        result["input"] = bench_input(config, data)
    _add_flops(result, config, num_classes, size, channels, dtype)
    if config.output_json:
        fileio.write_json(config.output_json, result)
    return result


def _add_flops(result: dict, config: BenchmarkConfig, num_classes: int, size: int,
               channels: int, dtype: tf.DType) -> None:
    """GFLOPs per image (forward; a training step counts 3x), achieved GFLOP/s, % of peak.

    The peak is the matmul rate of the dtype computed in; in reduced precision
    float32's is measured in the same run too, and the float32 step's share is
    of that one. Keras's rates get the same figures from its twin's own FLOPs.
    """
    from slimcli.nets import nets_factory
    net = nets_factory.get_network_fn(config.model_name, num_classes, is_training=False)
    gflops = model_flops(lambda x: net(x)[0], [1, size, size, channels]) / 1e9
    peak = measured_peak_gflops(dtype)
    float32_peak = peak if dtype == tf.float32 else measured_peak_gflops(tf.float32)
    result.update(gflops_per_image=gflops, machine_peak_gflops=peak,
                  peak_dtype=dtype.name, float32_peak_gflops=float32_peak)
    for mode, factor in (("train", 3), ("inference", 1)):
        ours = result.get(mode) or {}
        for figures, per_image, its_peak in (
                (ours, gflops, peak), (ours.get("float32"), gflops, float32_peak),
                (ours.get("keras"), result.get("keras_gflops_per_image"), peak)):
            if figures and per_image:
                achieved = figures["images_per_sec"] * factor * per_image
                figures.update(gflops_per_sec=achieved, peak_fraction=achieved / its_peak)


def format_result(result: dict) -> str:
    """The human-readable report slim-benchmark prints."""
    cfg = result["config"]
    dtype = result.get("peak_dtype", "float32")
    lines = [f"{result['model_name']} at {result['image_size']}x{result['image_size']}, batch "
             f"{cfg['batch_size']} x {result['num_replicas']} replica(s), {cfg['precision']}"
             f"{', XLA' if cfg['jit_compile'] else ''}, data {cfg['data']}; "
             f"{result['machine']['device']}, TensorFlow {result['machine']['tensorflow']}",
             f"matrix units: {result['machine'].get('matrix_units', 'unknown')}",
             f"model: {result['gflops_per_image']:.3f} GFLOPs per image (forward); machine "
             f"peak {result['machine_peak_gflops']:.0f} GFLOP/s in {dtype} (measured matmul)"
             + ("" if dtype == "float32" else
                f", {result['float32_peak_gflops']:.0f} in float32 = "
                f"{result['machine_peak_gflops'] / result['float32_peak_gflops']:.2f}x")]
    for mode in ("train", "inference", "input"):
        if mode not in result:
            continue
        r = result[mode]
        line = (f"{mode:9s} {r['images_per_sec']:9.1f} images/sec (min {r['min']:.1f}, max "
                f"{r['max']:.1f}), step {r['step_time_ms']:.1f} ms, "
                f"{r['images_per_cpu_sec']:.1f} images/CPU-sec")
        if "gflops_per_sec" in r:
            line += f", {r['gflops_per_sec']:.0f} GFLOP/s = {100 * r['peak_fraction']:.0f}% of peak"
        if r.get("peak_host_memory_mb"):
            line += f", peak host {r['peak_host_memory_mb']:.0f} MiB"
        if r.get("peak_device_memory_mb") is not None:
            line += f", peak device {r['peak_device_memory_mb']:.0f} MiB"
        lines.append(line)
        if "keras" in r:
            k = r["keras"]
            share = f", {100 * k['peak_fraction']:.0f}% of peak" if "peak_fraction" in k else ""
            lines.append(f"{'':9s} keras 3 {'fit' if mode == 'train' else 'predict'}: "
                         f"{k['images_per_sec']:.1f} images/sec (min {k['min']:.1f}, max "
                         f"{k['max']:.1f}){share}; slimcli / keras = {r['ratio_to_keras']:.2f}")
        if "float32" in r:
            k = r["float32"]
            lines.append(f"{'':9s} same step in float32: {k['images_per_sec']:.1f} images/sec "
                         f"({100 * k['peak_fraction']:.0f}% of the float32 peak); {dtype} gain "
                         f"over float32 = {r['ratio_to_float32']:.2f}x at "
                         f"{100 * r['peak_fraction']:.0f}% of the {dtype} peak")
        if "synthetic" in r:
            k = r["synthetic"]
            by_cpu = r["images_per_cpu_sec"] / k["images_per_cpu_sec"]
            lines.append(f"{'':9s} same step on synthetic data: {k['images_per_sec']:.1f} "
                         f"images/sec (min {k['min']:.1f}, max {k['max']:.1f}); real / synthetic"
                         f" = {r['ratio_to_synthetic']:.2f} (by CPU time: {by_cpu:.2f})")
    if isinstance(result.get("keras"), str):
        lines.append(result["keras"])
    return "\n".join(lines)
