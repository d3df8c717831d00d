"""PNASNet-5 (C. Liu et al., 2017, https://arxiv.org/abs/1712.00559): Mobile and Large.

One cell type (`PNASNET_5`); the cells at the reduction points stride by 2
instead of a separate reduction cell, and the two stem cells are the same cell.
Names as NASNet: `conv0/...`, `cell_stem_0/...`, `cell_N/...`, `aux_N/...`
(training only), `final_layer/FC/...`, softmax op `final_layer/predictions`.
Facts follow tensorflow/models research/slim `nets/nasnet/pnasnet.py`.
"""

from __future__ import annotations

from typing import Any

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets.nasnet import nasnet, nasnet_utils
from slimcli.nets.nasnet.nasnet import EndPoints, NasNetConfig
from slimcli.nets.nasnet.nasnet_utils import Cell
from slimcli.nets.registry import NetSpec

LARGE_IMAGENET_CONFIG = NasNetConfig(
    stem_multiplier=3.0, dense_dropout_keep_prob=0.5, num_cells=12, filter_scaling_rate=2.0,
    num_conv_filters=216, drop_path_keep_prob=0.6, use_aux_head=1, num_reduction_layers=2,
    skip_reduction_layer_input=1, total_training_steps=250000)

MOBILE_IMAGENET_CONFIG = NasNetConfig(
    stem_multiplier=1.0, dense_dropout_keep_prob=0.5, num_cells=9, filter_scaling_rate=2.0,
    num_conv_filters=54, drop_path_keep_prob=1.0, use_aux_head=1, num_reduction_layers=2,
    skip_reduction_layer_input=1, total_training_steps=250000)


def large_imagenet_config() -> NasNetConfig:
    """The hyper-parameters of PNASNet-5 Large."""
    return LARGE_IMAGENET_CONFIG


def mobile_imagenet_config() -> NasNetConfig:
    """The hyper-parameters of PNASNet-5 Mobile."""
    return MOBILE_IMAGENET_CONFIG


def pnasnet_large_arg_scope(weight_decay: float = 4e-5, batch_norm_decay: float = 0.9997,
                            batch_norm_epsilon: float = 1e-3) -> dict:
    """The arg scope of PNASNet Large (NASNet's, see `nasnet.nasnet_arg_scope`)."""
    return nasnet.nasnet_arg_scope(weight_decay, batch_norm_decay, batch_norm_epsilon)


def pnasnet_mobile_arg_scope(weight_decay: float = 4e-5, batch_norm_decay: float = 0.9997,
                             batch_norm_epsilon: float = 1e-3) -> dict:
    """The arg scope of PNASNet Mobile (NASNet's, see `nasnet.nasnet_arg_scope`)."""
    return nasnet.nasnet_arg_scope(weight_decay, batch_norm_decay, batch_norm_epsilon)


def _build_pnasnet_base(images, cell: Cell, num_classes, config: NasNetConfig,
                        is_training: bool, final_endpoint: str | None, current_step: Any):
    """The PNASNet body: stem, cells (strided at the reductions), aux head, final layer."""
    names = nasnet.end_point_names(config, reduction_cells=False)
    end_points = EndPoints(final_endpoint, names)
    reduction_indices = nasnet_utils.calc_reduction_layers(config.num_cells,
                                                           config.num_reduction_layers)
    net, cell_outputs = nasnet.imagenet_stem(images, config, cell, current_step)
    if end_points.add("Stem", net):                        # 42 x 42 x 540 (large)
        return net, dict(end_points)
    aux_cells = nasnet.aux_head_cells(config)
    act = nasnet.activation(config)
    filter_scaling = 1.0
    true_cell_num = 2  # the stem cells come first
    prev_layer = None
    for cell_num in range(config.num_cells):
        is_reduction = cell_num in reduction_indices
        stride = 2 if is_reduction else 1
        if is_reduction:
            filter_scaling *= config.filter_scaling_rate
        if config.skip_reduction_layer_input or not is_reduction:
            prev_layer = cell_outputs[-2]
        net = cell(net, scope=f"cell_{cell_num}", filter_scaling=filter_scaling, stride=stride,
                   prev_layer=prev_layer, cell_num=true_cell_num, current_step=current_step)
        if end_points.add(f"Cell_{cell_num}", net):    # 42/21/11 x .. x 1080/2160/4320 (large)
            return net, dict(end_points)
        true_cell_num += 1
        cell_outputs.append(net)
        if config.use_aux_head and cell_num in aux_cells and num_classes and is_training:
            nasnet.build_aux_head(act(net), end_points, num_classes, config,
                                  scope=f"aux_{cell_num}")
    net = nasnet.final_layer(net, num_classes, config, end_points)
    return net, dict(end_points)


def build_pnasnet(images, num_classes: int | None, is_training: bool = True,
                  final_endpoint: str | None = None, config: NasNetConfig | None = None,
                  current_step: Any = None, **hparams: Any):
    """A PNASNet-5 model; the variant is its config (`large_imagenet_config()`, ...).

    Args:
      images: [batch, height, width, 3] with static height and width.
      num_classes: logits size; 0 or None returns the `global_pool` features.
      is_training: batch norm in training mode, dropout, drop-path and the
        auxiliary head (variables `aux_<n>/...`, end point `AuxLogits`).
      final_endpoint: stop at this end point (`Stem`, `Cell_3`, `global_pool`,
        ...) and return its tensor.
      config: the hyper-parameters (default: `mobile_imagenet_config()`).
      current_step: the training step for the drop-path schedule; None
        applies the full drop-path rate.
      **hparams: overrides of config fields (`num_cells=6`, ...).

    Returns:
      (logits, or the final end point's tensor, or the pooled features; end_points).

    Raises:
      SlimError: an unknown hyper-parameter or final end point, an invalid
        value, or stem_type other than `imagenet`.
    """
    config = (config or MOBILE_IMAGENET_CONFIG).replace(**hparams)
    if config.stem_type != "imagenet":
        raise SlimError(f"PNASNet has only the ImageNet stem; got stem_type="
                        f"{config.stem_type!r}. Use stem_type='imagenet'.")
    if not is_training:
        config = config.replace(drop_path_keep_prob=1.0)
    images = nasnet.check_images(images)
    # No separate reduction cells: the cells plus the two stem cells.
    total_num_cells = config.num_cells + 2
    cell = Cell(nasnet_utils.PNASNET_5, config.num_conv_filters, config.drop_path_keep_prob,
                total_num_cells, config.total_training_steps, config.use_bounded_activation)
    with slim.arg_scope([slim.dropout, nasnet_utils.drop_path, slim.batch_norm],
                        is_training=is_training):
        return _build_pnasnet_base(images, cell, num_classes, config, is_training,
                                   final_endpoint, current_step)


build_pnasnet.default_image_size = 224


def build_pnasnet_large(images, num_classes, is_training: bool = True, final_endpoint=None,
                        config=None, current_step: Any = None, **hparams: Any):
    """PNASNet-5 Large for ImageNet (331 x 331); see `build_pnasnet`."""
    return build_pnasnet(images, num_classes, is_training, final_endpoint,
                         config or LARGE_IMAGENET_CONFIG, current_step, **hparams)


def build_pnasnet_mobile(images, num_classes, is_training: bool = True, final_endpoint=None,
                         config=None, current_step: Any = None, **hparams: Any):
    """PNASNet-5 Mobile for ImageNet (224 x 224); see `build_pnasnet`."""
    return build_pnasnet(images, num_classes, is_training, final_endpoint,
                         config or MOBILE_IMAGENET_CONFIG, current_step, **hparams)


build_pnasnet_large.default_image_size = 331
build_pnasnet_mobile.default_image_size = 224


def _spec(name: str, config: NasNetConfig, arg_scope, size: int, archive: str,
          top1: float) -> NetSpec:
    return NetSpec(name=name, fn=build_pnasnet, arg_scope=arg_scope, default_image_size=size,
                   preprocessing="inception", predictions_op="final_layer/predictions",
                   logits_scopes=nasnet.logits_scopes(config), fn_kwargs={"config": config},
                   zoo=nasnet.zoo_checkpoint(name, archive, top1))


NETS = (
    _spec("pnasnet_mobile", MOBILE_IMAGENET_CONFIG, pnasnet_mobile_arg_scope, 224,
          "pnasnet-5_mobile_2017_12_13.tar.gz", 74.2),
    _spec("pnasnet_large", LARGE_IMAGENET_CONFIG, pnasnet_large_arg_scope, 331,
          "pnasnet-5_large_2017_12_13.tar.gz", 82.9),
)
