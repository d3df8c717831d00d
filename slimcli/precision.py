"""Choosing the compute precision: float32, bfloat16, float16, or `auto` from the host's units.

    precision.resolve("auto")            # 'bfloat16' on AMX / AVX512-BF16 CPUs and bf16 GPUs
    precision.compute_dtype("bfloat16")  # tf.bfloat16
    precision.describe_units()           # 'CPU flags: avx avx2 fma (no bf16 matrix unit)'

In every precision the variables stay float32 (the master weights, saved under
their original names); only the activations and the matmuls/convolutions run in
the reduced type, through the nets' layers, which cast each weight to the dtype
of their input. float16 adds dynamic loss scaling in training.

The older `--mixed_precision --mixed_precision_dtype=D` is the same setting as
`--precision=D`: `effective()` maps the two onto one value.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Iterable

import tensorflow as tf

from slimcli.errors import SlimError

__all__ = ["PRECISIONS", "MatrixUnits", "GpuUnit", "PRECISION_HELP", "validate", "effective",
           "resolve", "compute_dtype", "keras_policy", "parse_cpu_flags", "detect_matrix_units",
           "describe_units", "auto_choice"]

log = logging.getLogger("slimcli.precision")

PRECISIONS = ("float32", "bfloat16", "float16", "auto")
# The CPU flags that say how fast reduced precision can be; the others are not reported.
MATRIX_FLAGS = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512_fp16", "avx512f",
                "avx2", "fma", "f16c", "avx")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)  # Ampere and later have bf16 tensor cores

PRECISION_HELP = ("Compute precision: float32 (the original's), bfloat16, float16 (loss-scaled) "
                  "or auto (bfloat16 on a CPU with AMX or AVX512-BF16 and on a GPU of compute "
                  "capability >= 8.0, else float32). Variables and checkpoints stay float32. "
                  "--mixed_precision --mixed_precision_dtype=D still works and means "
                  "--precision=D while --precision is float32; given with another --precision "
                  "it is an error.")


@dataclasses.dataclass(frozen=True)
class GpuUnit:
    """A GPU: its name and CUDA compute capability (None where unknown, e.g. ROCm)."""
    name: str
    compute_capability: tuple[int, int] | None

    @property
    def has_bf16(self) -> bool:
        return self.compute_capability is not None and \
            tuple(self.compute_capability) >= BF16_MIN_COMPUTE_CAPABILITY

    def __str__(self) -> str:
        cc = self.compute_capability
        return f"{self.name} (compute capability {cc[0]}.{cc[1]})" if cc else \
            f"{self.name} (compute capability unknown)"


@dataclasses.dataclass(frozen=True)
class MatrixUnits:
    """What the host computes with: its CPU's vector/matrix flags and its GPUs."""
    cpu_flags: tuple[str, ...]
    gpus: tuple[GpuUnit, ...] = ()

    @property
    def cpu_has_bf16(self) -> bool:
        return any(flag in self.cpu_flags for flag in BF16_CPU_FLAGS)

    @property
    def has_bf16(self) -> bool:
        """bf16 matrix units on the device that computes: the GPUs when present, else the CPU."""
        if self.gpus:
            return all(gpu.has_bf16 for gpu in self.gpus)
        return self.cpu_has_bf16

    def __str__(self) -> str:
        if self.gpus:
            return "GPU " + ", ".join(str(gpu) for gpu in self.gpus)
        units = "bf16 matrix units" if self.cpu_has_bf16 else \
            "no bf16 matrix unit: neither amx_bf16 nor avx512_bf16"
        return f"CPU flags: {' '.join(self.cpu_flags) or 'none of interest'} ({units})"


def validate(value: str) -> None:
    """Raises SlimError naming a precision not in PRECISIONS and the choices."""
    if value not in PRECISIONS:
        raise SlimError(f"--precision={value!r} is not one of {', '.join(PRECISIONS)}.")


def effective(precision: str = "float32", mixed_precision: bool = False,
              mixed_precision_dtype: str = "float16") -> str:
    """The one precision `--precision` and the older mixed-precision flags ask for.

    `--mixed_precision --mixed_precision_dtype=D` means `--precision=D` while
    `--precision` is float32 (its default); with any other `--precision` the two
    must agree.

    Raises:
      SlimError: a bad value, or flags that disagree.
    """
    validate(precision)
    if mixed_precision_dtype not in ("float16", "bfloat16"):
        raise SlimError(f"--mixed_precision_dtype={mixed_precision_dtype!r} is not one of "
                        f"float16, bfloat16; or use --precision.")
    if not mixed_precision:
        return precision
    if precision not in ("float32", mixed_precision_dtype):
        raise SlimError(f"--precision={precision} and --mixed_precision "
                        f"--mixed_precision_dtype={mixed_precision_dtype} disagree; pass only "
                        f"--precision.")
    return mixed_precision_dtype


def auto_choice(units: MatrixUnits) -> str:
    """What `auto` means on a host with `units`: bfloat16 where it has bf16 units, else float32."""
    return "bfloat16" if units.has_bf16 else "float32"


def resolve(precision: str = "float32", mixed_precision: bool = False,
            mixed_precision_dtype: str = "float16", units: MatrixUnits | None = None) -> str:
    """The concrete precision (never `auto`); `auto` is resolved from `units` and logged.

    Args:
      precision, mixed_precision, mixed_precision_dtype: the flags (see `effective`).
      units: the host's units; detected when None.

    Raises:
      SlimError: a bad value, or flags that disagree.
    """
    chosen = effective(precision, mixed_precision, mixed_precision_dtype)
    if chosen != "auto":
        return chosen
    units = units or detect_matrix_units()
    chosen = auto_choice(units)
    log.info("--precision=auto: %s on this host; %s", chosen, units)
    return chosen


def compute_dtype(precision: str) -> tf.DType:
    """The activations' dtype of a resolved precision."""
    validate(precision)
    if precision == "auto":
        raise SlimError("--precision=auto must be resolved first (precision.resolve).")
    return tf.as_dtype(precision)


def keras_policy(precision: str) -> str:
    """The Keras dtype policy of the same precision: float32, mixed_bfloat16 or mixed_float16."""
    return "float32" if compute_dtype(precision) == tf.float32 else f"mixed_{precision}"


# ---------------------------------------------------------------- detection
def parse_cpu_flags(cpuinfo: str) -> tuple[str, ...]:
    """The MATRIX_FLAGS named on the first `flags` line of /proc/cpuinfo text, in that order."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            present = set(value.split())
            return tuple(flag for flag in MATRIX_FLAGS if flag in present)
    return ()


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _tf_gpus() -> list[GpuUnit]:
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        cc = details.get("compute_capability")
        gpus.append(GpuUnit(details.get("device_name", device.name), tuple(cc) if cc else None))
    return gpus


@functools.lru_cache(maxsize=None)
def _host_units() -> MatrixUnits:
    return MatrixUnits(parse_cpu_flags(_read_cpuinfo()), tuple(_tf_gpus()))


def detect_matrix_units(cpuinfo: str | None = None,
                        gpus: Iterable[GpuUnit] | None = None) -> MatrixUnits:
    """This host's units: CPU flags from /proc/cpuinfo, GPUs from tf.config (once a process).

    Args:
      cpuinfo: /proc/cpuinfo text to use instead of the file (tests).
      gpus: the GPUs to use instead of tf.config's (tests).
    """
    if cpuinfo is None and gpus is None:
        return _host_units()
    flags = parse_cpu_flags(_read_cpuinfo() if cpuinfo is None else cpuinfo)
    return MatrixUnits(flags, tuple(_tf_gpus() if gpus is None else gpus))


def describe_units(units: MatrixUnits | None = None) -> str:
    """One line naming the host's matrix units (CPU flags, or GPU names and capabilities)."""
    return str(units or detect_matrix_units())
