"""Quantized runs of the commands: the settings, and the ranges in checkpoints.

slim-train `--quantize_delay`, slim-eval `--quantize` and slim-export
`--quantize` build their net with `quantize_config(...)`, which takes the net's
fixed input range from its preprocessing. The quantization ranges
(`<layer>/weights_quant/min`, `.../act_quant/max`, ...) are saved with every
checkpoint but are not model variables: fine-tuning restores them where the
checkpoint has them (a zoo `_quant` checkpoint) and learns them otherwise (a
float checkpoint), as the original's fine-tuning learnt them.
"""

from __future__ import annotations

import logging
from typing import Any

import tensorflow as tf

from slimcli import precision as precision_lib
from slimcli.errors import SlimError
from slimcli.preprocessing import preprocessing_for_net
from slimcli.slim import quantize

__all__ = ["quantize_config", "validate_train_flags", "train_quantize_config",
           "eval_quantize_config", "range_variables",
           "restorable_ranges", "check_ranges"]

log = logging.getLogger(__name__)


def quantize_config(model_name: str, preprocessing_name: str | None = None,
                    use_grayscale: bool = False, quant_delay: int | None = None,
                    freeze_bn_delay: int | None = None) -> quantize.QuantizeConfig:
    """The quantization settings of a run of `model_name` with its preprocessing.

    The net's input is quantized with the preprocessing's fixed output range
    ([-1, 1] for inception preprocessing); a preprocessing without one leaves
    it float, and the net's plan then says it cannot be quantized.
    """
    preprocessing = preprocessing_for_net(model_name, preprocessing_name,
                                          use_grayscale=use_grayscale)
    return quantize.QuantizeConfig(quant_delay=quant_delay, freeze_bn_delay=freeze_bn_delay,
                                   input_range=preprocessing.output_range)


def validate_train_flags(config: Any) -> None:
    """Checks slim-train's `--quantize_delay` and `--quantize_freeze_bn_delay`.

    Raises:
      SlimError: a delay below -1, a freeze delay without `--quantize_delay`, or a
        precision other than float32 (fake quantization computes in float32).
    """
    if config.quantize_delay < -1 or config.quantize_freeze_bn_delay < -1:
        raise SlimError(f"--quantize_delay={config.quantize_delay} and "
                        f"--quantize_freeze_bn_delay={config.quantize_freeze_bn_delay} must be "
                        f"a step >= 0, or -1 (off).")
    if config.quantize_delay < 0:
        if config.quantize_freeze_bn_delay >= 0:
            raise SlimError("--quantize_freeze_bn_delay needs --quantize_delay (a step >= 0).")
        return
    wanted = precision_lib.effective(config.precision, config.mixed_precision,
                                     config.mixed_precision_dtype)
    if wanted not in ("float32", "auto"):
        raise SlimError(f"--quantize_delay trains with fake quantization, which computes in "
                        f"float32; drop --precision={wanted} (or --mixed_precision).")


def train_quantize_config(config: Any) -> quantize.QuantizeConfig | None:
    """The `QuantizeConfig` of a slim-train config (None without `--quantize_delay`)."""
    if config.quantize_delay < 0:
        return None
    freeze = config.quantize_freeze_bn_delay if config.quantize_freeze_bn_delay >= 0 else None
    return quantize_config(config.model_name, config.preprocessing_name, config.use_grayscale,
                           config.quantize_delay, freeze)


def eval_quantize_config(config: Any) -> quantize.QuantizeConfig | None:
    """The `QuantizeConfig` of slim-eval's or slim-export's `--quantize` (None without it)."""
    if not config.quantize:
        return None
    return quantize_config(config.model_name, config.preprocessing_name, config.use_grayscale)


def range_variables(net: Any) -> dict[str, tf.Variable]:
    """`{name: variable}` of a net's quantization ranges (and their moving-average state)."""
    return net.variables_dict(quantize.RANGES)


def restorable_ranges(net: Any, path: str, exclude: list[str]) -> dict[str, tf.Variable]:
    """The ranges of `net` that checkpoint `path` holds (minus `exclude` scopes), to restore
    with the model variables when fine-tuning; logs how many it lacks."""
    keys = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    ranges = {n: v for n, v in range_variables(net).items()
              if not any(n.startswith(s) for s in exclude)}
    found = {n: v for n, v in ranges.items() if n in keys}
    if ranges and len(found) < len(ranges):
        log.info("Quantization ranges: %d restored from %s, %d learnt from the start (the "
                 "checkpoint lacks them)", len(found), path, len(ranges) - len(found))
    return found


def check_ranges(names: Any, model_name: str, path: str, keys: Any,
                 flag: str = "--quantize") -> None:
    """Raises the one-line error for a quantized net and a checkpoint without its ranges.

    Args:
      names: the quantized net's variable names (its ranges end in `_quant/min|max`).
      model_name: the net, for the message.
      path: the checkpoint.
      keys: the checkpoint's keys.
      flag: the flag that asked for the quantized net.

    Raises:
      SlimError: the checkpoint lacks some of the net's ranges.
    """
    wanted = sorted({n.rsplit("/", 1)[0] for n in names if n.endswith(("_quant/min",
                                                                     "_quant/max"))})
    missing = [p for p in wanted if f"{p}/min" not in keys or f"{p}/max" not in keys]
    if not missing:
        return
    some = "none" if len(missing) == len(wanted) else f"only {len(wanted) - len(missing)}"
    raise SlimError(f"{flag}: checkpoint {path} holds {some} of the {len(wanted)} quantization "
                    f"ranges of {model_name} (e.g. {missing[0]}/min): it was not trained with "
                    f"--quantize_delay. Drop {flag}, or fine-tune it with --quantize_delay first.")
