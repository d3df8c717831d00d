"""The preprocessing registry and the model → preprocessing table.

`get_preprocessing(name)` accepts one of the four preprocessing names
(`inception`, `vgg`, `cifarnet`, `lenet`) or a net name (`inception_v3` →
inception, `resnet_v1_50` → vgg, ...): a net's preprocessing is its registry
entry's (`NetSpec.preprocessing`). `PREPROCESSING_FOR_MODEL` is that table as
data, derived from the net registry. `preprocessing_for_net` is how training
and evaluation pick a run's preprocessing.

The original table lacked six of its own nets (asking for them raised). For
those slimcli picks what their checkpoints were trained with, and says so in
`DEFAULTS_NOT_IN_ORIGINAL` (the nets whose entry has
`preprocessing_in_original=False`): MobileNet v1 at 0.75/0.5/0.25 width →
inception (as MobileNet v1 1.0), nasnet_cifar → cifarnet, alexnet_v2/overfeat
→ vgg.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from types import ModuleType
from typing import Any, Callable, Iterable, Optional

import tensorflow as tf

from slimcli import nets
from slimcli.errors import SlimError
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


# Every net of the registry → the preprocessing its checkpoints expect.
PREPROCESSING_FOR_MODEL: dict[str, str] = {
    name: spec.preprocessing for name, spec in nets.NETS_REGISTRY.items()}

# Nets the original map lacked (it raised ValueError for them).
DEFAULTS_NOT_IN_ORIGINAL: frozenset[str] = frozenset(
    name for name, spec in nets.NETS_REGISTRY.items() if not spec.preprocessing_in_original)


def _unknown(kind: str, flag: str, names: Iterable[str], name: str) -> SlimError:
    """The registry error for `name`, listing `names` and the closest one."""
    known: Registry[str] = Registry(kind, flag)
    for known_name in names:
        known.register(known_name, known_name)
    return SlimError(known.unknown_message(name))


def preprocessing_name_for_model(model_name: str) -> str:
    """The preprocessing a model's checkpoints expect (its `NetSpec.preprocessing`).

    Args:
      model_name: a net name such as `inception_v3` or `resnet_v1_50`.

    Returns:
      One of `inception`, `vgg`, `cifarnet`, `lenet`.

    Raises:
      SlimError: unknown model; the message lists the known ones.
    """
    if model_name not in nets.NETS_REGISTRY:
        raise _unknown("model", "--model_name", nets.list_nets(), model_name)
    return nets.get_net_spec(model_name).preprocessing


def resolve_preprocessing_name(name: str) -> str:
    """Maps a preprocessing or model name to a preprocessing name.

    Raises:
      SlimError: unknown name; the message lists the accepted names and the
        closest match.
    """
    if name in PREPROCESSING:
        return name
    if name not in nets.NETS_REGISTRY:
        raise _unknown("preprocessing or model", "--preprocessing_name",
                       {*PREPROCESSING.names(), *nets.list_nets()}, name)
    spec = nets.get_net_spec(name)
    if not spec.preprocessing_in_original:
        logging.info("preprocessing for %r: %r (slimcli's default; the original "
                     "TF-Slim map had no entry for it)", name, spec.preprocessing)
    return spec.preprocessing


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """A preprocessing function bound to training/eval mode and grayscale.

    Call it as `fn(image, output_height, output_width, **kwargs)`; kwargs go
    to the module's `preprocess_image` (e.g. `seed=`, `fast_mode=`).
    """

    name: str
    is_training: bool = False
    use_grayscale: bool = False
    min_crop_area: Optional[float] = None  # training crops' smallest area (None: the module's)

    def _crop_kwargs(self) -> dict:
        return {} if self.min_crop_area is None else {"area_range": (self.min_crop_area, 1.0)}

    def __call__(self, image: tf.Tensor, output_height: int, output_width: int,
                 **kwargs: Any) -> tf.Tensor:
        module = PREPROCESSING.get(self.name).module
        return module.preprocess_image(image, output_height, output_width,
                                       is_training=self.is_training,
                                       use_grayscale=self.use_grayscale,
                                       **{**self._crop_kwargs(), **kwargs})

    def with_min_crop_area(self, area: float) -> "Preprocessing":
        """This preprocessing with training crops of at least `area` of the image (inception's
        area range is 0.05-1 in the original).

        Raises:
          SlimError: not in (0, 1], or a preprocessing whose crops have no area range.
        """
        if not 0.0 < area <= 1.0:
            raise SlimError(f"--min_crop_area must be in (0, 1] (a share of the image); got "
                            f"{area}.")
        module = PREPROCESSING.get(self.name).module
        if getattr(module, "AREA_RANGE", None) is None:
            raise SlimError(f"--min_crop_area={area}: {self.name} preprocessing crops no "
                            f"random area (only inception's does); leave it at its default.")
        if area == module.AREA_RANGE[0]:
            return self
        return dataclasses.replace(self, min_crop_area=area)

    @property
    def output_range(self) -> tuple[float, float] | None:
        """(min, max): the fixed range of every output value over all channels (a quantized
        net's input range), from `pixel_range`; None where there is none (cifarnet's
        per-image standardization)."""
        pixel = self.pixel_range()
        if pixel is None:
            return None
        scale, offset = pixel
        offsets = offset if isinstance(offset, tuple) else (offset,)
        return float(min(offsets)), float(scale + max(offsets))

    def batched(self) -> Optional[Callable[..., tf.Tensor]]:
        """`fn(images [B, H, W, C], output_height, output_width, seed=)` over a batch
        of same-size images, when the module has one (`preprocess_batch`), else None."""
        module = PREPROCESSING.get(self.name).module
        batch_fn = getattr(module, "preprocess_batch", None)
        if batch_fn is None:
            return None
        return functools.partial(batch_fn, is_training=self.is_training,
                                 use_grayscale=self.use_grayscale)


    def working_side(self, output_size: int) -> int:
        """The shorter side (pixels) an image needs for outputs of `output_size`; a photo
        decoded down to it gives about the same output. 0: the image's own pixels are
        needed (cifarnet and lenet crop or pad without resizing)."""
        module = PREPROCESSING.get(self.name).module
        side_fn = getattr(module, "working_side", None)
        return 0 if side_fn is None else side_fn(output_size, self.is_training)

    def pixel_range(self) -> Optional[tuple]:
        """(scale, offset): outputs are `scale * pixel + offset` for pixels in [0, 1] (the
        offset may be per channel); None where there is no fixed range (cifarnet
        standardizes each image)."""
        module = PREPROCESSING.get(self.name).module
        range_fn = getattr(module, "pixel_range", None)
        return None if range_fn is None else range_fn(self.use_grayscale)

    def split(self) -> Optional[tuple[Callable[..., Any], Callable[..., tf.Tensor]]]:
        """Training in two parts, where the module has them (inception):
        `per_image(image, height, width, seed=) -> (image, draws)` and
        `per_batch(images, draws) -> images`, together the same as calling this
        preprocessing with `seed=` (up to float rounding); else None."""
        module = PREPROCESSING.get(self.name).module
        per_image = getattr(module, "train_crop_and_draws", None)
        if not self.is_training or per_image is None:
            return None
        return (functools.partial(per_image, **self._crop_kwargs()),
                functools.partial(module.finish_train_batch, use_grayscale=self.use_grayscale))


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


def preprocessing_for_net(model_name: str, preprocessing_name: str | None = None,
                          is_training: bool = False, use_grayscale: bool = False) -> Preprocessing:
    """The preprocessing of a run of `model_name`: the one way training and evaluation pick it.

    Args:
      model_name: the run's net (`--model_name`).
      preprocessing_name: `--preprocessing_name`, a preprocessing or net name;
        None or empty: the net's own (`NetSpec.preprocessing`).
      is_training: training distortions or the evaluation preprocessing.
      use_grayscale: output one channel.

    Raises:
      SlimError: an unknown name; the message lists the accepted names.
    """
    return get_preprocessing(preprocessing_name or model_name, is_training, use_grayscale)
