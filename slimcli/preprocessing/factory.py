"""The preprocessing registry and the model → preprocessing table.

`get_preprocessing(name)` accepts one of the four preprocessing names
(`inception`, `vgg`, `cifarnet`, `lenet`) or a model name of the original
`nets_factory` (`inception_v3` → inception, `resnet_v1_50` → vgg, ...).
`PREPROCESSING_FOR_MODEL` is that table as data; the net registry checks its
own `preprocessing_name` entries against it.

The original table lacked six of its own nets (asking for them raised). For
those slimcli picks what their checkpoints were trained with, and says so in
`DEFAULTS_NOT_IN_ORIGINAL`: MobileNet v1 at 0.75/0.5/0.25 width → inception
(as MobileNet v1 1.0), nasnet_cifar → cifarnet, alexnet_v2/overfeat → vgg.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from types import ModuleType
from typing import Any, Callable, Optional

import tensorflow as tf

from slimcli.preprocessing import cifarnet, inception, lenet, vgg
from slimcli.registry import Registry


@dataclasses.dataclass(frozen=True)
class PreprocessingEntry:
    """One preprocessing family.

    Attributes:
      name: registry name.
      module: the module with `preprocess_image(image, h, w, is_training, ...)`.
      summary: one line for listings and docs.
    """

    name: str
    module: ModuleType
    summary: str


PREPROCESSING: Registry[PreprocessingEntry] = Registry("preprocessing", "--preprocessing_name")
for _entry in (
    PreprocessingEntry("inception", inception,
                       "central crop 0.875, bilinear resize, scale to [-1, 1]"),
    PreprocessingEntry("vgg", vgg,
                       "smallest side to 256, central crop, subtract the RGB means"),
    PreprocessingEntry("cifarnet", cifarnet,
                       "centre crop/pad, per-image standardization"),
    PreprocessingEntry("lenet", lenet, "centre crop/pad, (x - 128) / 128"),
):
    PREPROCESSING.register(_entry.name, _entry)


def _table(names: str, preprocessing_name: str) -> dict[str, str]:
    return {name: preprocessing_name for name in names.split()}


# Every image classifier of the original nets_factory → its preprocessing.
PREPROCESSING_FOR_MODEL: dict[str, str] = {
    **_table("alexnet_v2 overfeat vgg_a vgg_16 vgg_19"
             " resnet_v1_50 resnet_v1_101 resnet_v1_152 resnet_v1_200"
             " resnet_v2_50 resnet_v2_101 resnet_v2_152 resnet_v2_200", "vgg"),
    **_table("inception_v1 inception_v2 inception_v3 inception_v4 inception_resnet_v2"
             " mobilenet_v1 mobilenet_v1_075 mobilenet_v1_050 mobilenet_v1_025"
             " mobilenet_v2 mobilenet_v2_140 mobilenet_v2_035"
             " mobilenet_v3_small mobilenet_v3_large"
             " mobilenet_v3_small_minimalistic mobilenet_v3_large_minimalistic"
             " mobilenet_edgetpu mobilenet_edgetpu_075"
             " nasnet_mobile nasnet_large pnasnet_mobile pnasnet_large", "inception"),
    **_table("cifarnet nasnet_cifar", "cifarnet"),
    "lenet": "lenet",
}

# Models the original map lacked (it raised ValueError for them).
DEFAULTS_NOT_IN_ORIGINAL: frozenset[str] = frozenset(
    "alexnet_v2 overfeat mobilenet_v1_075 mobilenet_v1_050 mobilenet_v1_025 nasnet_cifar".split())

# Every name get_preprocessing accepts, for lookups with helpful errors.
_ACCEPTED: Registry[str] = Registry("preprocessing or model", "--preprocessing_name")
for _name in PREPROCESSING.names():
    _ACCEPTED.register(_name, _name)
for _name, _target in PREPROCESSING_FOR_MODEL.items():
    if _name not in _ACCEPTED:
        _ACCEPTED.register(_name, _target)


def preprocessing_name_for_model(model_name: str) -> str:
    """The preprocessing a model's checkpoints expect.

    Args:
      model_name: a net name such as `inception_v3` or `resnet_v1_50`.

    Returns:
      One of `inception`, `vgg`, `cifarnet`, `lenet`.

    Raises:
      SlimError: unknown model; the message lists the known ones.
    """
    if model_name not in PREPROCESSING_FOR_MODEL:
        models = Registry("model", "--model_name")
        for name in PREPROCESSING_FOR_MODEL:
            models.register(name, name)
        models.get(model_name)  # Raises with the known names and closest match.
    return PREPROCESSING_FOR_MODEL[model_name]


def resolve_preprocessing_name(name: str) -> str:
    """Maps a preprocessing or model name to a preprocessing name.

    Raises:
      SlimError: unknown name; the message lists the accepted names and the
        closest match.
    """
    resolved = _ACCEPTED.get(name)
    if name in DEFAULTS_NOT_IN_ORIGINAL:
        logging.info("preprocessing for %r: %r (slimcli's default; the original "
                     "TF-Slim map had no entry for it)", name, resolved)
    return resolved


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """A preprocessing function bound to training/eval mode and grayscale.

    Call it as `fn(image, output_height, output_width, **kwargs)`; kwargs go
    to the module's `preprocess_image` (e.g. `seed=`, `fast_mode=`).
    """

    name: str
    is_training: bool = False
    use_grayscale: bool = False

    def __call__(self, image: tf.Tensor, output_height: int, output_width: int,
                 **kwargs: Any) -> tf.Tensor:
        module = PREPROCESSING.get(self.name).module
        return module.preprocess_image(image, output_height, output_width,
                                       is_training=self.is_training,
                                       use_grayscale=self.use_grayscale, **kwargs)

    def batched(self) -> Optional[Callable[..., tf.Tensor]]:
        """`fn(images [B, H, W, C], output_height, output_width, seed=)` over a batch
        of same-size images, when the module has one (`preprocess_batch`), else None."""
        module = PREPROCESSING.get(self.name).module
        batch_fn = getattr(module, "preprocess_batch", None)
        if batch_fn is None:
            return None
        return functools.partial(batch_fn, is_training=self.is_training,
                                 use_grayscale=self.use_grayscale)


def get_preprocessing(name: str, is_training: bool = False,
                      use_grayscale: bool = False) -> Preprocessing:
    """Returns `fn(image, output_height, output_width, **kwargs)`.

    Args:
      name: a preprocessing name (`inception`, `vgg`, `cifarnet`, `lenet`) or
        a model name (`inception_v3`, `resnet_v1_50`, ...).
      is_training: training distortions (random, seedable with `seed=`) or
        the deterministic evaluation preprocessing.
      use_grayscale: output one channel.

    Returns:
      A callable `Preprocessing`.

    Raises:
      SlimError: unknown name; the message lists the accepted names and the
        closest match.
    """
    return Preprocessing(resolve_preprocessing_name(name), bool(is_training), bool(use_grayscale))
