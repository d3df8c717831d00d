"""The nets registry: one entry carries everything about a net.

Family modules (`lenet.py`, `vgg.py`, ...) each export `NETS`, a tuple of
`NetSpec`; `nets_factory` gathers them into `NETS_REGISTRY`. No hand-synced
side tables: the arg scope, default image size, preprocessing, prediction op
name and fine-tuning scopes all live on the entry.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from slimcli.registry import Registry


@dataclasses.dataclass(frozen=True)
class NetSpec:
    """Everything about one net of the factory.

    Attributes:
      name: the factory name (`inception_v3`, `mobilenet_v1_025`).
      fn: the net function `fn(images, num_classes, is_training, **kw) -> (logits, end_points)`.
      arg_scope: the arg-scope function `arg_scope(weight_decay=..., **kw) -> scope dict`.
      default_image_size: the input height and width the net was trained at.
      preprocessing: the preprocessing name (`inception`, `vgg`, `cifarnet`, `lenet`).
      predictions_op: the op name of the softmax output in an exported graph
        (`InceptionV3/Predictions/Reshape_1`); None for nets without one (VGG).
      logits_scopes: the variable scopes of the classifier layers, i.e. the
        `--checkpoint_exclude_scopes` for fine-tuning on a new label set.
      fn_kwargs: fixed keyword arguments of this variant (`depth_multiplier=0.25`).
      arg_scope_kwargs: fixed keyword arguments for the arg scope.
      zoo_num_classes: classes of the published checkpoint (1000 for VGG and
        ResNet-v1: use `--labels_offset=1` on 1001-class ImageNet data).
      predictions_key: the end-point key of the softmax (`Predictions` or `predictions`).
      preprocessing_note: why the preprocessing was chosen when the original had none.
    """
    name: str
    fn: Callable
    arg_scope: Callable
    default_image_size: int
    preprocessing: str
    predictions_op: str | None
    logits_scopes: tuple[str, ...]
    fn_kwargs: dict = dataclasses.field(default_factory=dict)
    arg_scope_kwargs: dict = dataclasses.field(default_factory=dict)
    zoo_num_classes: int = 1001
    predictions_key: str = "Predictions"
    preprocessing_note: str = ""

    @property
    def checkpoint_exclude_scopes(self) -> str:
        """The `--checkpoint_exclude_scopes` value for fine-tuning to new classes."""
        return ",".join(self.logits_scopes)


NETS_REGISTRY: Registry[NetSpec] = Registry("net", "--model_name")


def register_all(specs: Any) -> None:
    for spec in specs:
        NETS_REGISTRY.register(spec.name, spec)
