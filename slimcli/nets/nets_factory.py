"""The nets factory: `get_network_fn(name, num_classes, weight_decay, is_training)`.

    network_fn = nets_factory.get_network_fn('inception_v3', num_classes=1001)
    logits, end_points = network_fn(images)     # creates the variables once, reuses them after
    network_fn.default_image_size               # 299
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re
import sys
from typing import Any

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets.registry import NETS_REGISTRY, NetSpec, register_all
from slimcli.slim.quantize import QuantizeConfig, Quantizer

_PACKAGE = __name__.rpartition(".")[0]  # slimcli.nets


def register_family_modules() -> list[str]:
    """Imports every module of the `slimcli.nets` package and registers its `NETS`.

    The modules are found on the package's `__path__` (subpackages such as
    `mobilenet/` included), so a new family module needs no list to be
    edited. Runs when `slimcli.nets` is imported; calling it again registers
    only modules added since (their nets must have new names).

    Returns:
      The names of the modules that define nets, in import order.
    """
    package = sys.modules[_PACKAGE]
    families = []
    for info in pkgutil.walk_packages(package.__path__, f"{_PACKAGE}."):
        specs = getattr(importlib.import_module(info.name), "NETS", None)
        if specs is not None:
            register_all(specs)
            families.append(info.name)
    return families


register_family_modules()


def list_nets(pattern: str = "*") -> list[str]:
    """Net names matching a wildcard (`*resnet*`), in natural order."""
    return NETS_REGISTRY.names(pattern)


def get_net_spec(name: str) -> NetSpec:
    """The registry entry of `name` (an error lists the known names and the closest)."""
    return NETS_REGISTRY.get(name)


class NetworkFn(slim.Model):
    """A net of the factory with its variable store: `logits, end_points = fn(images)`.

    Keyword arguments given to the call override the factory's (`is_training`,
    `dropout_keep_prob`, ...), so one set of variables serves training and
    evaluation: `fn(images, is_training=False)`. With `quantize`, every call
    simulates 8-bit quantization (`slimcli.slim.quantize`); `quantizer.step`
    is the training step its delays count.
    """

    def __init__(self, spec: NetSpec, num_classes: int | None, weight_decay: float = 0.0,
                 is_training: bool = False, batch_norm_decay: float | None = None,
                 quantize: QuantizeConfig | None = None, **net_kwargs: Any):
        super().__init__(spec.fn, name=spec.name, num_classes=num_classes,
                         is_training=is_training, **{**spec.fn_kwargs, **net_kwargs})
        if batch_norm_decay is not None and default_batch_norm_decay(spec) is None:
            raise SlimError(f"{spec.name}'s arg scope has no batch-norm decay to set; leave "
                            f"--batch_norm_decay unset for it.")
        self.spec = spec
        self.num_classes = num_classes
        self.weight_decay = weight_decay
        self.batch_norm_decay = batch_norm_decay  # None: the arg scope's own
        self.default_image_size = spec.default_image_size
        self._channels: int | None = None
        self.quantizer = None if quantize is None else Quantizer(quantize, spec.name)

    def _check_images(self, images: Any) -> tf.Tensor:
        images = tf.convert_to_tensor(images)
        size = self.default_image_size
        expected = f"[batch, height, width, channels] (e.g. [N, {size}, {size}, 3])"
        if images.shape.rank != 4:
            raise SlimError(f"{self.spec.name}: expected images of shape {expected}, "
                            f"got shape {images.shape}.")
        channels = images.shape[-1]
        if channels is None:
            raise SlimError(f"{self.spec.name}: the channel dimension of the images must be "
                            f"known; got shape {images.shape}.")
        if self._channels is not None and channels != self._channels:
            raise SlimError(f"{self.spec.name}: the net was built for {self._channels}-channel "
                            f"images, expected shape [batch, height, width, {self._channels}]; "
                            f"got shape {images.shape}.")
        return images

    def __call__(self, images: Any, **kwargs: Any):
        images = self._check_images(images)
        extra = {} if self.batch_norm_decay is None else {"batch_norm_decay": self.batch_norm_decay}
        scope = self.spec.arg_scope(weight_decay=self.weight_decay,
                                    **{**self.spec.arg_scope_kwargs, **extra})
        with slim.arg_scope(scope):
            try:
                result = self._call(images, kwargs)
            except ValueError as e:
                if "Negative dimension size" not in str(e):
                    raise
                raise SlimError(self._too_small(images, str(e))) from None
        self._channels = int(images.shape[-1])
        return result

    def _call(self, images: tf.Tensor, kwargs: dict):
        if self.quantizer is None:
            return super().__call__(images, **kwargs)
        is_training = kwargs.get("is_training", self._fixed_kwargs["is_training"])
        return self.quantizer(functools.partial(slim.Model.__call__, self), self.store, images,
                              kwargs, is_training)

    def _too_small(self, images: tf.Tensor, message: str) -> str:
        node = re.search(r"node ([^}\s]+)", message)
        where = f" (at {node.group(1).rsplit('/', 1)[0]})" if node else ""
        size = self.default_image_size
        return (f"{self.spec.name}: images of {images.shape[1]}x{images.shape[2]} are too small "
                f"for this net: a feature map shrinks below its kernel{where}. Use a larger "
                f"image size (the net's default is {size}x{size}: --train_image_size, "
                f"--eval_image_size or --image_size).")


def default_batch_norm_decay(spec: NetSpec) -> float | None:
    """The batch-norm decay `spec`'s arg scope uses; None when it takes no `batch_norm_decay`."""
    param = inspect.signature(spec.arg_scope).parameters.get("batch_norm_decay")
    if param is None:
        return None
    own = None if param.default is param.empty else param.default
    return spec.arg_scope_kwargs.get("batch_norm_decay", own)


def checkpoint_owner(keys: Any, model_name: str) -> tuple[str, str]:
    """(`of <nets>` or `under <scopes>`, the `--model_name` fix) of a checkpoint's `keys`.

    For a checkpoint holding none of `model_name`'s variables: names the factory
    nets whose variable scope its keys start with.
    """
    tops = {k.split("/", 1)[0] for k in keys}
    others = [name for name, spec in NETS_REGISTRY.items() if name != model_name and
              spec.logits_scopes and spec.logits_scopes[0].split("/", 1)[0] in tops]
    if others:
        return f"of {' or '.join(others[:3])}", f"--model_name={others[0]}"
    return f"under {sorted(tops)[:4]}", "the --model_name it was made for"


def get_network_fn(name: str, num_classes: int | None, weight_decay: float = 0.0,
                   is_training: bool = False, batch_norm_decay: float | None = None,
                   quantize: QuantizeConfig | None = None, **net_kwargs: Any) -> NetworkFn:
    """Returns the net `name` as a callable `(images, **kw) -> (logits, end_points)`.

    Args:
      name: a factory name (see `list_nets()`).
      num_classes: logits size; 0 or None gives the pre-logits features.
      weight_decay: L2 weight decay applied through the net's arg scope.
      is_training: the default mode of calls (batch norm, dropout).
      batch_norm_decay: the moving-statistics decay through the arg scope
        (None: the net's own; an error for nets whose scope has none).
      quantize: simulate 8-bit quantization in every call, as TF1's
        `contrib.quantize` rewrite did (None: float).
      **net_kwargs: extra keyword arguments of the net function
        (`dropout_keep_prob`, `global_pool`, `depth_multiplier`, ...).

    Raises:
      SlimError: unknown name (lists the known names and the closest match).
    """
    spec = get_net_spec(name)
    return NetworkFn(spec, num_classes, weight_decay, is_training, batch_norm_decay, quantize,
                     **net_kwargs)
