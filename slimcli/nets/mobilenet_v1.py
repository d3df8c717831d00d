"""MobileNet v1 (Howard et al., 2017, arXiv:1704.04861).

A 3x3 conv then 13 depthwise-separable layers (`Conv2d_N_depthwise`: a 3x3
depthwise conv; `Conv2d_N_pointwise`: a 1x1 conv), each followed by batch
norm and relu6; average pool, dropout and a 1x1 conv to the logits. Scope
`MobilenetV1`. Variables, end points and arguments follow tensorflow/models
research/slim `nets/mobilenet_v1.py`; the width variants (0.75, 0.5, 0.25)
keep the variable names.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Sequence

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets.mobilenet.conv_blocks import fixed_padding
from slimcli.nets.registry import TF_MODELS_URL, NetSpec, ZooCheckpoint

Conv = collections.namedtuple("Conv", ["kernel", "stride", "depth"])
DepthSepConv = collections.namedtuple("DepthSepConv", ["kernel", "stride", "depth"])

MOBILENETV1_CONV_DEFS = (
    Conv(kernel=[3, 3], stride=2, depth=32),             # 112 x 112 x 32
    DepthSepConv(kernel=[3, 3], stride=1, depth=64),     # 112 x 112 x 64
    DepthSepConv(kernel=[3, 3], stride=2, depth=128),    # 56 x 56 x 128
    DepthSepConv(kernel=[3, 3], stride=1, depth=128),
    DepthSepConv(kernel=[3, 3], stride=2, depth=256),    # 28 x 28 x 256
    DepthSepConv(kernel=[3, 3], stride=1, depth=256),
    DepthSepConv(kernel=[3, 3], stride=2, depth=512),    # 14 x 14 x 512
    *(DepthSepConv(kernel=[3, 3], stride=1, depth=512) for _ in range(5)),
    DepthSepConv(kernel=[3, 3], stride=2, depth=1024),   # 7 x 7 x 1024
    DepthSepConv(kernel=[3, 3], stride=1, depth=1024),
)


def _end_point_names(conv_defs: Sequence) -> list[str]:
    names = []
    for i, conv_def in enumerate(conv_defs):
        if isinstance(conv_def, DepthSepConv):
            names += [f"Conv2d_{i}_depthwise", f"Conv2d_{i}_pointwise"]
        else:
            names.append(f"Conv2d_{i}")
    return names


def _check_base_args(conv_defs: Sequence, final_endpoint: str, depth_multiplier: float,
                     output_stride: int | None) -> None:
    if depth_multiplier <= 0:
        raise SlimError(f"mobilenet_v1: depth_multiplier must be > 0, got {depth_multiplier}; "
                        f"use e.g. 1.0, 0.75, 0.5 or 0.25.")
    if output_stride is not None and output_stride not in (8, 16, 32):
        raise SlimError(f"mobilenet_v1: output_stride must be 8, 16, 32 or None, "
                        f"got {output_stride}.")
    for i, conv_def in enumerate(conv_defs):
        if not isinstance(conv_def, (Conv, DepthSepConv)):
            raise SlimError(f"mobilenet_v1: conv_defs[{i}]={conv_def!r} is neither a Conv nor a "
                            f"DepthSepConv; build conv defs from those two namedtuples.")
    names = _end_point_names(conv_defs)
    if final_endpoint not in names:
        raise SlimError(f"mobilenet_v1: unknown final_endpoint {final_endpoint!r}; use one of "
                        f"{', '.join(names)}.")


def mobilenet_v1_base(inputs: tf.Tensor, final_endpoint: str = "Conv2d_13_pointwise",
                      min_depth: int = 8, depth_multiplier: float = 1.0,
                      conv_defs: Sequence | None = None, output_stride: int | None = None,
                      use_explicit_padding: bool = False,
                      scope: Any = None) -> tuple[tf.Tensor, dict]:
    """MobileNet v1 up to `final_endpoint`.

    Args:
      inputs: [batch, height, width, channels].
      final_endpoint: the last layer built (`Conv2d_0`, `Conv2d_1_depthwise`,
        ..., `Conv2d_13_pointwise`).
      min_depth: the smallest channel count after the multiplier.
      depth_multiplier: scales every layer's channels.
      conv_defs: a sequence of `Conv` / `DepthSepConv` (the original's when None).
      output_stride: 8, 16 or 32: later strides become dilation rates.
      use_explicit_padding: pad explicitly and use VALID convs.
      scope: the variable scope (`MobilenetV1` when None).

    Returns:
      (the tensor of `final_endpoint`, end_points).

    Raises:
      SlimError: depth_multiplier <= 0, a bad output_stride or conv def, or an
        unknown final_endpoint.
    """
    conv_defs = MOBILENETV1_CONV_DEFS if conv_defs is None else conv_defs
    _check_base_args(conv_defs, final_endpoint, depth_multiplier, output_stride)

    def depth(d: int) -> int:
        return max(int(d * depth_multiplier), min_depth)

    end_points = {}
    padding = "VALID" if use_explicit_padding else "SAME"
    with slim.variable_scope(scope, "MobilenetV1"), \
            slim.arg_scope([slim.conv2d, slim.separable_conv2d], padding=padding):
        current_stride, rate = 1, 1
        net = inputs
        for i, conv_def in enumerate(conv_defs):
            if output_stride is not None and current_stride == output_stride:
                layer_stride, layer_rate = 1, rate
                rate *= conv_def.stride
            else:
                layer_stride, layer_rate = conv_def.stride, 1
                current_stride *= conv_def.stride
            if isinstance(conv_def, Conv):
                if use_explicit_padding:
                    net = fixed_padding(net, conv_def.kernel)
                # The original uses the def's stride here, not layer_stride.
                net = end_points[f"Conv2d_{i}"] = slim.conv2d(
                    net, depth(conv_def.depth), conv_def.kernel, stride=conv_def.stride,
                    scope=f"Conv2d_{i}")
                if final_endpoint == f"Conv2d_{i}":
                    return net, end_points
                continue
            if use_explicit_padding:
                net = fixed_padding(net, conv_def.kernel, layer_rate)
            net = end_points[f"Conv2d_{i}_depthwise"] = slim.separable_conv2d(
                net, None, conv_def.kernel, depth_multiplier=1, stride=layer_stride,
                rate=layer_rate, scope=f"Conv2d_{i}_depthwise")
            if final_endpoint == f"Conv2d_{i}_depthwise":
                return net, end_points
            net = end_points[f"Conv2d_{i}_pointwise"] = slim.conv2d(
                net, depth(conv_def.depth), [1, 1], stride=1, scope=f"Conv2d_{i}_pointwise")
            if final_endpoint == f"Conv2d_{i}_pointwise":
                return net, end_points
    raise SlimError(f"mobilenet_v1: final_endpoint {final_endpoint!r} was not reached.")


def _reduced_kernel_size_for_small_input(net: tf.Tensor, kernel_size: list[int]) -> list[int]:
    """The pooling kernel, shrunk to the input's static size when that is smaller."""
    height, width = net.shape[1], net.shape[2]
    if height is None or width is None:
        return kernel_size
    return [min(height, kernel_size[0]), min(width, kernel_size[1])]


def mobilenet_v1(inputs: tf.Tensor, num_classes: int | None = 1000,
                 dropout_keep_prob: float = 0.999, is_training: bool = True,
                 min_depth: int = 8, depth_multiplier: float = 1.0,
                 conv_defs: Sequence | None = None, prediction_fn: Callable | None = slim.softmax,
                 spatial_squeeze: bool = True, reuse: Any = None, scope: str = "MobilenetV1",
                 global_pool: bool = False, output_stride: int | None = None,
                 use_explicit_padding: bool = False) -> tuple[tf.Tensor, dict]:
    """MobileNet v1 classifier.

    Args:
      inputs: [batch, height, width, 3].
      num_classes: logits size; 0 or None returns the pooled features.
      dropout_keep_prob: keep probability of the dropout before the logits.
      is_training: batch-norm and dropout mode.
      min_depth: the smallest channel count after the multiplier.
      depth_multiplier: scales every layer's channels.
      conv_defs: a sequence of `Conv` / `DepthSepConv` (the original's when None).
      prediction_fn: turns logits into predictions.
      spatial_squeeze: squeeze the logits to [batch, num_classes].
      reuse: reuse the variables of `scope`.
      scope: the variable scope.
      global_pool: average over the whole feature map (any input size)
        instead of the fixed 7x7 `AvgPool_1a`.
      output_stride: passed to `mobilenet_v1_base` (slimcli addition).
      use_explicit_padding: passed to `mobilenet_v1_base` (slimcli addition).

    Returns:
      (logits, end_points).

    Raises:
      SlimError: `inputs` is not rank 4, or a bad base argument.
    """
    if inputs.shape.rank != 4:
        raise SlimError(f"mobilenet_v1: expected a rank-4 input [batch, height, width, "
                        f"channels], got shape {inputs.shape}.")
    with slim.variable_scope(scope, "MobilenetV1", reuse=reuse) as sc, \
            slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
        net, end_points = mobilenet_v1_base(inputs, scope=sc, min_depth=min_depth,
                                            depth_multiplier=depth_multiplier,
                                            conv_defs=conv_defs, output_stride=output_stride,
                                            use_explicit_padding=use_explicit_padding)
        with slim.variable_scope("Logits"):
            if global_pool:
                net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
                end_points["global_pool"] = net
            else:
                kernel_size = _reduced_kernel_size_for_small_input(net, [7, 7])
                net = slim.avg_pool2d(net, kernel_size, padding="VALID", scope="AvgPool_1a")
                end_points["AvgPool_1a"] = net                      # 1 x 1 x 1024
            if not num_classes:
                return net, end_points
            net = slim.dropout(net, keep_prob=dropout_keep_prob, scope="Dropout_1b")
            logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                 normalizer_fn=None, scope="Conv2d_1c_1x1")
            if spatial_squeeze:
                logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
        end_points["Logits"] = logits
        if prediction_fn:
            end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


mobilenet_v1.default_image_size = 224


def mobilenet_v1_arg_scope(is_training: bool | None = True, weight_decay: float = 0.00004,
                           stddev: float = 0.09, regularize_depthwise: bool = False,
                           batch_norm_decay: float = 0.9997, batch_norm_epsilon: float = 0.001,
                           normalizer_fn: Callable | None = slim.batch_norm) -> dict:
    """MobileNet v1's arg scope: relu6, batch norm with gamma, truncated-normal weights.

    Args:
      is_training: default batch-norm mode (None leaves it unset).
      weight_decay: L2 decay of the conv weights.
      stddev: the weights' truncated-normal stddev.
      regularize_depthwise: also decay the depthwise weights.
      batch_norm_decay: moving-average decay.
      batch_norm_epsilon: added to the variance.
      normalizer_fn: the normalizer of the convs.

    Returns:
      The scope dict, for `slim.arg_scope(scope)`.
    """
    batch_norm_params = {"center": True, "scale": True, "decay": batch_norm_decay,
                         "epsilon": batch_norm_epsilon}
    if is_training is not None:
        batch_norm_params["is_training"] = is_training
    regularizer = slim.l2_regularizer(weight_decay)
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d],
                        weights_initializer=slim.truncated_normal_initializer(stddev=stddev),
                        activation_fn=tf.nn.relu6, normalizer_fn=normalizer_fn), \
            slim.arg_scope([slim.batch_norm], **batch_norm_params), \
            slim.arg_scope([slim.conv2d], weights_regularizer=regularizer), \
            slim.arg_scope([slim.separable_conv2d],
                           weights_regularizer=regularizer if regularize_depthwise else None) as sc:
        return sc


# The quantized checkpoints (contrib.quantize) of research/slim/nets/mobilenet_v1.md: width →
# {image size: ImageNet top-1 of the TFLite model}.
QUANTIZED_TOP1 = {
    "1.0": {224: 70.1, 192: 69.2, 160: 67.2, 128: 63.4},
    "0.75": {224: 66.8, 192: 66.1, 160: 62.3, 128: 55.8},
    "0.5": {224: 60.7, 192: 60.0, 160: 57.7, 128: 54.5},
    "0.25": {224: 48.0, 192: 46.0, 160: 43.4, 128: 39.5},
}


def _quantized(width: str) -> tuple[ZooCheckpoint, ...]:
    """The `mobilenet_v1_<width>_<size>_quant` checkpoints of one width."""
    return tuple(ZooCheckpoint(
        f"{TF_MODELS_URL}mobilenet_v1_2018_08_02/mobilenet_v1_{width}_{size}_quant.tgz",
        f"mobilenet_v1_{width}_{size}_quant.ckpt", top1, name=f"mobilenet_v1_{width}_{size}_quant",
        quantized=True,
        notes=f"quantized at {size}x{size}: evaluate with --quantize --eval_image_size={size}, "
              f"fine-tune with --quantize_delay=0 --train_image_size={size}")
        for size, top1 in QUANTIZED_TOP1[width].items())


def _spec(name: str, depth_multiplier: float, zoo: str = "", top1: float = 0.0) -> NetSpec:
    """One width; `zoo` names the published archive (`1.0_224`) with its `top1`."""
    in_original = depth_multiplier == 1.0
    note = ("" if in_original else
            "the original preprocessing map has no entry for this net; slimcli uses "
            "inception preprocessing, as for mobilenet_v1")
    checkpoint = ZooCheckpoint(
        f"{TF_MODELS_URL}mobilenet_v1_2018_02_22/mobilenet_v1_{zoo}.tgz",
        f"mobilenet_v1_{zoo}.ckpt", top1) if zoo else None
    return NetSpec(name=name, fn=mobilenet_v1, arg_scope=mobilenet_v1_arg_scope,
                   default_image_size=224, preprocessing="inception",
                   predictions_op="MobilenetV1/Predictions/Reshape_1",
                   logits_scopes=("MobilenetV1/Logits",),
                   fn_kwargs={"depth_multiplier": depth_multiplier}, preprocessing_note=note,
                   preprocessing_in_original=in_original, zoo=checkpoint,
                   keras_twin=("MobileNet", {} if in_original else {"alpha": depth_multiplier}),
                   zoo_variants=_quantized(str(depth_multiplier)))


NETS = (
    _spec("mobilenet_v1", 1.0, "1.0_224", 70.9),
    _spec("mobilenet_v1_075", 0.75),
    _spec("mobilenet_v1_050", 0.50, "0.5_160", 59.1),
    _spec("mobilenet_v1_025", 0.25, "0.25_128", 41.5),
)
