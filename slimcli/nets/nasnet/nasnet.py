"""NASNet-A (B. Zoph et al., 2017, https://arxiv.org/abs/1707.07012): CIFAR, Mobile, Large.

No model scope: variables are `conv0/weights`, `conv0_bn/gamma`, `cell_stem_0/...`,
`cell_N/...`, `reduction_cell_K/...`, `aux_N/aux_logits/...` (training only) and
`final_layer/FC/{weights,biases}`; the softmax op is `final_layer/predictions`.
Structure, hyper-parameters and names follow tensorflow/models research/slim
`nets/nasnet/nasnet.py`. The variants differ only by their `NasNetConfig`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets.nasnet import nasnet_utils
from slimcli.nets.nasnet.nasnet_utils import Cell
from slimcli.nets.registry import GCS_MODELS_URL, NetSpec, ZooCheckpoint

STEM_TYPES = ("imagenet", "cifar")


@dataclasses.dataclass(frozen=True)
class NasNetConfig:
    """The hyper-parameters of a NASNet/PNASNet model (the original's HParams).

    Attributes:
      stem_multiplier: scales the stem's filters.
      dense_dropout_keep_prob: dropout keep probability before the classifier.
      num_cells: normal cells (reduction cells come on top for NASNet).
      filter_scaling_rate: filter multiplier at each reduction.
      num_conv_filters: filters of a cell's convolutions at the first stage.
      drop_path_keep_prob: drop-path keep probability (training only).
      use_aux_head: 1 builds the auxiliary classifier when training.
      num_reduction_layers: reductions evenly placed among the cells.
      skip_reduction_layer_input: 1 feeds a cell after a reduction the output
        from before the reduction's input as its previous layer.
      total_training_steps: steps over which the drop-path rate ramps up.
      stem_type: `imagenet` (conv0 + two stem cells) or `cifar` (one conv).
      data_format: only `NHWC`.
      use_bounded_activation: ReLU6 and clipping (for quantized inference).
    """
    stem_multiplier: float
    dense_dropout_keep_prob: float
    num_cells: int
    filter_scaling_rate: float
    num_conv_filters: int
    drop_path_keep_prob: float
    use_aux_head: int
    num_reduction_layers: int
    skip_reduction_layer_input: int
    total_training_steps: int
    stem_type: str = "imagenet"
    data_format: str = "NHWC"
    use_bounded_activation: bool = False

    def __post_init__(self):
        positive = ("stem_multiplier", "num_cells", "filter_scaling_rate", "num_conv_filters",
                    "total_training_steps")
        for field in positive:
            if not getattr(self, field) > 0:
                raise SlimError(f"NASNet config: expected {field} > 0. Received: "
                                f"{field}={getattr(self, field)!r}")
        for field in ("drop_path_keep_prob", "dense_dropout_keep_prob"):
            if not 0.0 < getattr(self, field) <= 1.0:
                raise SlimError(f"NASNet config: expected {field} in (0, 1]. Received: "
                                f"{field}={getattr(self, field)!r}")
        if self.num_reduction_layers < 0:
            raise SlimError(f"NASNet config: expected num_reduction_layers >= 0. Received: "
                            f"num_reduction_layers={self.num_reduction_layers!r}")
        if self.stem_type not in STEM_TYPES:
            raise SlimError(f"NASNet config: unknown stem_type={self.stem_type!r}; use one of "
                            f"{', '.join(STEM_TYPES)}.")
        if self.data_format != "NHWC":
            raise SlimError(f"NASNet config: data_format={self.data_format!r} is not supported; "
                            f"use NHWC (TensorFlow converts layouts for the GPU itself).")

    def replace(self, **overrides: Any) -> "NasNetConfig":
        """A copy with some hyper-parameters changed (`num_cells=6`).

        Raises:
          SlimError: an unknown hyper-parameter name, or an invalid value.
        """
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise SlimError(f"unknown NASNet hyper-parameter(s) {', '.join(unknown)}; the known "
                            f"ones are: {', '.join(known)}.")
        return dataclasses.replace(self, **overrides)


# Cifar: batch 32, lr 0.025 cosine, aux loss weight 0.4, gradient norm clip 5, 600 epochs.
CIFAR_CONFIG = NasNetConfig(
    stem_multiplier=3.0, dense_dropout_keep_prob=1.0, num_cells=18, filter_scaling_rate=2.0,
    num_conv_filters=32, drop_path_keep_prob=0.6, use_aux_head=1, num_reduction_layers=2,
    skip_reduction_layer_input=0, total_training_steps=937500, stem_type="cifar")

# Mobile ImageNet: batch 32 per replica x 50, lr 0.04 * 50, decay 0.97 / 2.4 epochs.
MOBILE_IMAGENET_CONFIG = NasNetConfig(
    stem_multiplier=1.0, dense_dropout_keep_prob=0.5, num_cells=12, filter_scaling_rate=2.0,
    num_conv_filters=44, drop_path_keep_prob=1.0, use_aux_head=1, num_reduction_layers=2,
    skip_reduction_layer_input=0, total_training_steps=250000)

# Large ImageNet: batch 16 per replica x 100, lr 0.015 * 100, label smoothing 0.1.
LARGE_IMAGENET_CONFIG = NasNetConfig(
    stem_multiplier=3.0, dense_dropout_keep_prob=0.5, num_cells=18, filter_scaling_rate=2.0,
    num_conv_filters=168, drop_path_keep_prob=0.7, use_aux_head=1, num_reduction_layers=2,
    skip_reduction_layer_input=1, total_training_steps=250000)


def cifar_config() -> NasNetConfig:
    """The hyper-parameters of NASNet-A 6@768 for CIFAR-10."""
    return CIFAR_CONFIG


def mobile_imagenet_config() -> NasNetConfig:
    """The hyper-parameters of NASNet-A Mobile 4@1056."""
    return MOBILE_IMAGENET_CONFIG


def large_imagenet_config() -> NasNetConfig:
    """The hyper-parameters of NASNet-A Large 6@4032."""
    return LARGE_IMAGENET_CONFIG


def nasnet_arg_scope(weight_decay: float, batch_norm_decay: float,
                     batch_norm_epsilon: float) -> dict:
    """The arg scope of every NASNet/PNASNet: no biases or activations in convs, FAN_OUT init.

    Fully connected layers are linear and named `FC`; batch norm learns gamma.

    Args:
      weight_decay: L2 decay of the weights.
      batch_norm_decay: decay of the moving statistics.
      batch_norm_epsilon: added to the variance.

    Returns:
      The scope dict to enter with `slim.arg_scope(sc)`.
    """
    with slim.arg_scope([slim.fully_connected, slim.conv2d, slim.separable_conv2d],
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        weights_initializer=slim.variance_scaling_initializer(mode="FAN_OUT")):
        with slim.arg_scope([slim.fully_connected], activation_fn=None, scope="FC"):
            with slim.arg_scope([slim.conv2d, slim.separable_conv2d], activation_fn=None,
                                biases_initializer=None):
                with slim.arg_scope([slim.batch_norm], decay=batch_norm_decay,
                                    epsilon=batch_norm_epsilon, scale=True, fused=True) as sc:
                    return sc


def nasnet_cifar_arg_scope(weight_decay: float = 5e-4, batch_norm_decay: float = 0.9,
                           batch_norm_epsilon: float = 1e-5) -> dict:
    """The arg scope of NASNet-A CIFAR (see `nasnet_arg_scope`)."""
    return nasnet_arg_scope(weight_decay, batch_norm_decay, batch_norm_epsilon)


def nasnet_mobile_arg_scope(weight_decay: float = 4e-5, batch_norm_decay: float = 0.9997,
                            batch_norm_epsilon: float = 1e-3) -> dict:
    """The arg scope of NASNet-A Mobile (see `nasnet_arg_scope`)."""
    return nasnet_arg_scope(weight_decay, batch_norm_decay, batch_norm_epsilon)


def nasnet_large_arg_scope(weight_decay: float = 5e-5, batch_norm_decay: float = 0.9997,
                           batch_norm_epsilon: float = 1e-3) -> dict:
    """The arg scope of NASNet-A Large (see `nasnet_arg_scope`)."""
    return nasnet_arg_scope(weight_decay, batch_norm_decay, batch_norm_epsilon)


def activation(config: NasNetConfig):
    """ReLU, or ReLU6 with bounded activations."""
    return tf.nn.relu6 if config.use_bounded_activation else tf.nn.relu


class EndPoints(dict):
    """The end-point dict, which knows where the net should stop.

    Raises:
      SlimError: `final_endpoint` is not one of `valid`.
    """

    def __init__(self, final_endpoint: str | None, valid: list[str]):
        super().__init__()
        if final_endpoint is not None and final_endpoint not in valid:
            raise SlimError(f"unknown final_endpoint={final_endpoint!r}; use one of "
                            f"{', '.join(valid)}.")
        self.final_endpoint = final_endpoint

    def add(self, name: str, net: tf.Tensor) -> bool:
        """Records `net` as end point `name`; True when the net should stop here."""
        self[name] = net
        return name == self.final_endpoint


def build_aux_head(net: tf.Tensor, end_points: dict, num_classes: int, config: NasNetConfig,
                   scope: str) -> None:
    """The auxiliary classifier `<scope>/aux_logits/...`; sets end point `AuxLogits`.

    Raises:
      SlimError: the feature map is smaller than the head's 5 x 5 pooling window.
    """
    height, width = int(net.shape[1]), int(net.shape[2])
    if min(height, width) < 5:
        raise SlimError(f"the auxiliary head {scope} needs a feature map of at least 5 x 5; got "
                        f"{height} x {width}. Train on larger images or pass use_aux_head=0.")
    act = activation(config)
    with slim.variable_scope(scope):
        aux_logits = tf.identity(net)
        with slim.variable_scope("aux_logits"):
            aux_logits = slim.avg_pool2d(aux_logits, [5, 5], stride=3, padding="VALID")
            aux_logits = slim.conv2d(aux_logits, 128, [1, 1], scope="proj")
            aux_logits = act(slim.batch_norm(aux_logits, scope="aux_bn0"))
            # A conv over the whole remaining feature map: 1 x 1 x 768.
            kernel = [int(aux_logits.shape[1]), int(aux_logits.shape[2])]
            aux_logits = slim.conv2d(aux_logits, 768, kernel, padding="VALID")
            aux_logits = act(slim.batch_norm(aux_logits, scope="aux_bn1"))
            aux_logits = slim.flatten(aux_logits)
            end_points["AuxLogits"] = slim.fully_connected(aux_logits, num_classes)


def imagenet_stem(inputs: tf.Tensor, config: NasNetConfig, stem_cell: Cell,
                  current_step: Any = None) -> tuple[tf.Tensor, list]:
    """conv0 (3x3 stride 2, VALID) and two stride-2 stem cells `cell_stem_0/1`."""
    num_stem_cells = 2
    num_stem_filters = int(32 * config.stem_multiplier)
    net = slim.conv2d(inputs, num_stem_filters, [3, 3], stride=2, padding="VALID",
                      scope="conv0")                                # 111 x 111 x 32 (mobile)
    net = slim.batch_norm(net, scope="conv0_bn")
    cell_outputs = [None, net]
    filter_scaling = 1.0 / (config.filter_scaling_rate ** num_stem_cells)
    for cell_num in range(num_stem_cells):
        net = stem_cell(net, scope=f"cell_stem_{cell_num}", filter_scaling=filter_scaling,
                        stride=2, prev_layer=cell_outputs[-2], cell_num=cell_num,
                        current_step=current_step)             # 56 x 56 x 44, 28 x 28 x 88
        cell_outputs.append(net)
        filter_scaling *= config.filter_scaling_rate
    return net, cell_outputs


def cifar_stem(inputs: tf.Tensor, config: NasNetConfig) -> tuple[tf.Tensor, list]:
    """One 3x3 conv `l1_stem_3x3` + `l1_stem_bn`."""
    num_stem_filters = int(config.num_conv_filters * config.stem_multiplier)
    net = slim.conv2d(inputs, num_stem_filters, 3, scope="l1_stem_3x3")   # 32 x 32 x 96
    net = slim.batch_norm(net, scope="l1_stem_bn")
    return net, [None, net]


def final_layer(net: tf.Tensor, num_classes: int | None, config: NasNetConfig,
                end_points: EndPoints) -> tf.Tensor:
    """`final_layer/`: activation, global average pool, dropout, `FC`, `predictions`."""
    with slim.variable_scope("final_layer"):
        net = activation(config)(net)
        net = nasnet_utils.global_avg_pool(net)
        if end_points.add("global_pool", net) or not num_classes:
            return net
        net = slim.dropout(net, config.dense_dropout_keep_prob, scope="dropout")
        logits = slim.fully_connected(net, num_classes)
        if end_points.add("Logits", logits):
            return logits
        end_points.add("Predictions", tf.nn.softmax(logits, name="predictions"))
    return logits


def check_images(images: Any) -> tf.Tensor:
    """NASNet cells compare spatial sizes, so height and width must be static.

    Raises:
      SlimError: not [batch, height, width, channels] with known height and width.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4 or images.shape[1] is None or images.shape[2] is None:
        raise SlimError(f"NASNet/PNASNet need images of shape [batch, height, width, channels] "
                        f"with a known height and width (e.g. [N, 224, 224, 3]); got shape "
                        f"{images.shape}.")
    return images


def end_point_names(config: NasNetConfig, reduction_cells: bool) -> list[str]:
    """The end points a net of `config` can stop at, in order."""
    reduction_indices = nasnet_utils.calc_reduction_layers(config.num_cells,
                                                           config.num_reduction_layers)
    names = ["Stem"]
    for cell_num in range(config.num_cells):
        if reduction_cells and cell_num in reduction_indices:
            names.append(f"Reduction_Cell_{reduction_indices.index(cell_num)}")
        names.append(f"Cell_{cell_num}")
    return names + ["global_pool", "Logits", "Predictions"]


def aux_head_cells(config: NasNetConfig) -> list[int]:
    """The normal cells after which the auxiliary head branches off (before the 2nd reduction)."""
    reduction_indices = nasnet_utils.calc_reduction_layers(config.num_cells,
                                                           config.num_reduction_layers)
    return [reduction_indices[1] - 1] if len(reduction_indices) >= 2 else []


def _build_nasnet_base(images, normal_cell: Cell, reduction_cell: Cell, num_classes,
                       config: NasNetConfig, is_training: bool, final_endpoint: str | None,
                       current_step: Any):
    """The NASNet body: stem, normal and reduction cells, aux head, final layer."""
    end_points = EndPoints(final_endpoint, end_point_names(config, reduction_cells=True))
    reduction_indices = nasnet_utils.calc_reduction_layers(config.num_cells,
                                                           config.num_reduction_layers)
    if config.stem_type == "imagenet":
        # The stem cells are reduction cells.
        net, cell_outputs = imagenet_stem(images, config, reduction_cell, current_step)
    else:
        net, cell_outputs = cifar_stem(images, config)
    if end_points.add("Stem", net):
        return net, dict(end_points)
    aux_cells = aux_head_cells(config)
    act = activation(config)
    filter_scaling = 1.0
    # Cell index for drop-path, counting stem and reduction cells.
    true_cell_num = 2 if config.stem_type == "imagenet" else 0
    prev_layer = None
    for cell_num in range(config.num_cells):
        if config.skip_reduction_layer_input:
            prev_layer = cell_outputs[-2]
        if cell_num in reduction_indices:
            filter_scaling *= config.filter_scaling_rate
            k = reduction_indices.index(cell_num)
            net = reduction_cell(net, scope=f"reduction_cell_{k}", filter_scaling=filter_scaling,
                                 stride=2, prev_layer=cell_outputs[-2], cell_num=true_cell_num,
                                 current_step=current_step)
            if end_points.add(f"Reduction_Cell_{k}", net):
                return net, dict(end_points)
            true_cell_num += 1
            cell_outputs.append(net)
        if not config.skip_reduction_layer_input:
            prev_layer = cell_outputs[-2]
        net = normal_cell(net, scope=f"cell_{cell_num}", filter_scaling=filter_scaling, stride=1,
                          prev_layer=prev_layer, cell_num=true_cell_num,
                          current_step=current_step)
        if end_points.add(f"Cell_{cell_num}", net):
            return net, dict(end_points)
        true_cell_num += 1
        if config.use_aux_head and cell_num in aux_cells and num_classes and is_training:
            build_aux_head(act(net), end_points, num_classes, config, scope=f"aux_{cell_num}")
        cell_outputs.append(net)
    net = final_layer(net, num_classes, config, end_points)
    return net, dict(end_points)


def build_nasnet(images, num_classes: int | None, is_training: bool = True,
                 final_endpoint: str | None = None, config: NasNetConfig | None = None,
                 current_step: Any = None, **hparams: Any):
    """A NASNet-A model; the variant is its config (`cifar_config()`, ...).

    Args:
      images: [batch, height, width, 3] with static height and width.
      num_classes: logits size; 0 or None returns the `global_pool` features.
      is_training: batch norm in training mode, dropout, drop-path and the
        auxiliary head (variables `aux_<n>/...`, end point `AuxLogits`).
      final_endpoint: stop at this end point (`Stem`, `Cell_3`,
        `Reduction_Cell_0`, `global_pool`, ...) and return its tensor.
      config: the hyper-parameters (default: `mobile_imagenet_config()`).
      current_step: the training step for the drop-path schedule (e.g.
        `optimizer.iterations`); None applies the full drop-path rate.
      **hparams: overrides of config fields (`num_cells=6`, `use_aux_head=0`,
        `filter_scaling_rate=2.0`, `drop_path_keep_prob=0.8`, `stem_type=...`).

    Returns:
      (logits, or the final end point's tensor, or the pooled features; end_points).

    Raises:
      SlimError: an unknown hyper-parameter or final end point, an invalid value.
    """
    config = (config or MOBILE_IMAGENET_CONFIG).replace(**hparams)
    if not is_training:
        config = config.replace(drop_path_keep_prob=1.0)
    images = check_images(images)
    # Cells for the drop-path depth ratio: + 2 reductions (+ 2 stem cells on ImageNet).
    total_num_cells = config.num_cells + 2 + (2 if config.stem_type == "imagenet" else 0)
    cell_args = (config.num_conv_filters, config.drop_path_keep_prob, total_num_cells,
                 config.total_training_steps, config.use_bounded_activation)
    normal_cell = Cell(nasnet_utils.NASNET_A_NORMAL, *cell_args)
    reduction_cell = Cell(nasnet_utils.NASNET_A_REDUCTION, *cell_args)
    with slim.arg_scope([slim.dropout, nasnet_utils.drop_path, slim.batch_norm],
                        is_training=is_training):
        return _build_nasnet_base(images, normal_cell, reduction_cell, num_classes, config,
                                  is_training, final_endpoint, current_step)


build_nasnet.default_image_size = 224


def build_nasnet_cifar(images, num_classes, is_training: bool = True, final_endpoint=None,
                       config=None, current_step: Any = None, **hparams: Any):
    """NASNet-A for CIFAR-10 (32 x 32); see `build_nasnet`."""
    return build_nasnet(images, num_classes, is_training, final_endpoint,
                        config or CIFAR_CONFIG, current_step, **hparams)


def build_nasnet_mobile(images, num_classes, is_training: bool = True, final_endpoint=None,
                        config=None, current_step: Any = None, **hparams: Any):
    """NASNet-A Mobile for ImageNet (224 x 224); see `build_nasnet`."""
    return build_nasnet(images, num_classes, is_training, final_endpoint,
                        config or MOBILE_IMAGENET_CONFIG, current_step, **hparams)


def build_nasnet_large(images, num_classes, is_training: bool = True, final_endpoint=None,
                       config=None, current_step: Any = None, **hparams: Any):
    """NASNet-A Large for ImageNet (331 x 331); see `build_nasnet`."""
    return build_nasnet(images, num_classes, is_training, final_endpoint,
                        config or LARGE_IMAGENET_CONFIG, current_step, **hparams)


build_nasnet_cifar.default_image_size = 32
build_nasnet_mobile.default_image_size = 224
build_nasnet_large.default_image_size = 331


def logits_scopes(config: NasNetConfig) -> tuple[str, ...]:
    """The classifier scopes to exclude when fine-tuning: `final_layer` and the aux head."""
    return ("final_layer",) + tuple(f"aux_{n}" for n in aux_head_cells(config))


def zoo_checkpoint(name: str, archive: str, top1: float) -> ZooCheckpoint:
    """A NASNet/PNASNet zoo archive: its generic `model.ckpt` unpacks into `<name>/`."""
    return ZooCheckpoint(f"{GCS_MODELS_URL}{archive}", "model.ckpt", top1, subdir=name)


def _spec(name: str, config: NasNetConfig, arg_scope, size: int, **extra: Any) -> NetSpec:
    return NetSpec(name=name, fn=build_nasnet, arg_scope=arg_scope, default_image_size=size,
                   predictions_op="final_layer/predictions", logits_scopes=logits_scopes(config),
                   fn_kwargs={"config": config}, **extra)


NETS = (
    _spec("nasnet_cifar", CIFAR_CONFIG, nasnet_cifar_arg_scope, 32, preprocessing="cifarnet",
          zoo_num_classes=10, preprocessing_in_original=False,
          preprocessing_note="the original preprocessing map has no nasnet_cifar entry; "
                             "slimcli uses the CIFAR-10 net's cifarnet preprocessing"),
    _spec("nasnet_mobile", MOBILE_IMAGENET_CONFIG, nasnet_mobile_arg_scope, 224,
          preprocessing="inception", keras_twin=("NASNetMobile", {}),
          zoo=zoo_checkpoint("nasnet_mobile", "nasnet-a_mobile_04_10_2017.tar.gz", 74.0)),
    _spec("nasnet_large", LARGE_IMAGENET_CONFIG, nasnet_large_arg_scope, 331,
          preprocessing="inception", keras_twin=("NASNetLarge", {}),
          zoo=zoo_checkpoint("nasnet_large", "nasnet-a_large_04_10_2017.tar.gz", 82.7)),
)
