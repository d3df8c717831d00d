"""The nets registry: one entry carries everything about a net.

Family modules (`lenet.py`, `vgg.py`, ...) each export `NETS`, a tuple of
`NetSpec`; `nets_factory` finds every module of the `slimcli.nets` package and
registers its `NETS` into `NETS_REGISTRY`, so adding a net means editing its
family module alone. No hand-synced side tables: the arg scope, default image
size, preprocessing, prediction op name, fine-tuning scopes, model-zoo
checkpoint and Keras twin all live on the entry; the preprocessing table
(`slimcli.preprocessing`), the zoo table (`slimcli.datasets.checkpoints`) and
the benchmark's Keras table are derived from it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from slimcli.registry import Registry

# Where the zoo archives live (the original README's links, over https, which the host serves).
TF_MODELS_URL = "https://download.tensorflow.org/models/"
GCS_MODELS_URL = "https://storage.googleapis.com/download.tensorflow.org/models/"
# The zoo note of the Caffe-converted 1000-class checkpoints (VGG, ResNet V1).
LABELS_OFFSET_NOTE = ("Caffe-converted, 1000 classes: evaluate on ImageNet with "
                      "--labels_offset=1")


@dataclasses.dataclass(frozen=True)
class ZooCheckpoint:
    """A net's published checkpoint (the original README's model-zoo table).

    Attributes:
      url: the archive's upstream URL.
      checkpoint: the checkpoint prefix inside the archive.
      top1: the README's ImageNet top-1 accuracy.
      notes: extra flags the README says the checkpoint needs.
      subdir: unpack into `<checkpoint_dir>/<subdir>` (archives whose
        checkpoint is the generic `model.ckpt`, which would collide).
      digest: the archive's published digest, `sha256:<hex>` or
        `sha384:<hex>`; empty where none is known (see `open_model_zoo_pin`).
      size: the archive's size in bytes, with `digest`.
      digest_source: who published `digest`.
      name: its name in the zoo list (`slim-download --checkpoint=NAME`); empty: the net's.
      quantized: trained with quantization-aware training (evaluate it with
        `--quantize`, fine-tune it with `--quantize_delay`).
      model_name: the net it belongs to; set by its `NetSpec`.
      exclude_scopes: `--checkpoint_exclude_scopes` for fine-tuning on a new
        label set; set by its `NetSpec` from the net's `logits_scopes`.
    """
    url: str
    checkpoint: str
    top1: float
    notes: str = ""
    subdir: str = ""
    digest: str = ""
    size: int | None = None
    digest_source: str = ""
    name: str = ""
    quantized: bool = False
    model_name: str = dataclasses.field(default="", init=False)
    exclude_scopes: str = dataclasses.field(default="", init=False)


def open_model_zoo_pin(model: str, digest: str, size: int) -> dict[str, Any]:
    """`ZooCheckpoint` keywords pinning an archive to the digest and size recorded in
    openvinotoolkit/open_model_zoo's `models/public/<model>/model.yml`, whose
    `original_source` is the same upstream file."""
    return {"digest": digest, "size": size,
            "digest_source": f"open_model_zoo models/public/{model}/model.yml"}


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
      preprocessing_in_original: False where the original preprocessing map had
        no entry for the net and `preprocessing` is slimcli's choice.
      zoo: the published checkpoint, if any; its `model_name` and
        `exclude_scopes` are filled in from this entry.
      zoo_variants: more published checkpoints of the net under their own names
        (the quantized MobileNets), filled in the same way.
      keras_twin: the `keras.applications` class of the same architecture and
        its keyword arguments (`("MobileNet", {"alpha": 0.5})`), if any;
        `("Sequential", {})` for the small nets the benchmark builds itself.
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
    preprocessing_in_original: bool = True
    zoo: ZooCheckpoint | None = None
    keras_twin: tuple[str, dict] | None = None
    zoo_variants: tuple[ZooCheckpoint, ...] = ()

    def __post_init__(self):
        if self.zoo is not None:
            object.__setattr__(self, "zoo", self._owned(self.zoo))
        object.__setattr__(self, "zoo_variants",
                           tuple(self._owned(zoo) for zoo in self.zoo_variants))

    def _owned(self, zoo: ZooCheckpoint) -> ZooCheckpoint:
        """`zoo` with this net's name and exclude scopes filled in."""
        zoo = dataclasses.replace(zoo, name=zoo.name or self.name)
        object.__setattr__(zoo, "model_name", self.name)
        object.__setattr__(zoo, "exclude_scopes", self.checkpoint_exclude_scopes)
        return zoo

    @property
    def zoo_checkpoints(self) -> tuple[ZooCheckpoint, ...]:
        """Every published checkpoint of the net: `zoo`, then `zoo_variants`."""
        return ((self.zoo,) if self.zoo is not None else ()) + self.zoo_variants

    @property
    def checkpoint_exclude_scopes(self) -> str:
        """The `--checkpoint_exclude_scopes` value for fine-tuning to new classes."""
        return ",".join(self.logits_scopes)


NETS_REGISTRY: Registry[NetSpec] = Registry("net", "--model_name")


def register_all(specs: Any) -> None:
    """Registers every `NetSpec` of `specs` (a family module's `NETS`).

    A spec already registered (the same object) is skipped, so registering a
    module twice is harmless; another net of the same name is an error.
    """
    for spec in specs:
        if spec.name in NETS_REGISTRY and NETS_REGISTRY.get(spec.name) is spec:
            continue
        NETS_REGISTRY.register(spec.name, spec)
