"""MobileNet v3 (Howard et al., 2019, arXiv:1905.02244) and MobileNet EdgeTPU as conv defs.

Large, Small and their "minimalistic" versions (no squeeze-excite, no
hard-swish, 3x3 kernels only), scope `MobilenetV3`; EdgeTPU (fused kxk
expansions instead of depthwise convs in the early blocks), scope
`MobilenetEdgeTPU`. Follows tensorflow/models research/slim
`nets/mobilenet/mobilenet_v3.py`.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from slimcli import slim
from slimcli.nets.mobilenet import mobilenet as lib
from slimcli.nets.mobilenet.conv_blocks import (expand_input_by_factor, expanded_conv,
                                                fused_expansion, hard_swish, squeeze_excite_v3)
from slimcli.nets.mobilenet.mobilenet import op
from slimcli.nets.registry import NetSpec

RELU = tf.nn.relu
HSWISH = hard_swish


@slim.add_arg_scope
def reduce_to_1x1(input_tensor: tf.Tensor, default_size: int = 7, **kwargs: Any) -> tf.Tensor:
    """Average pool to 1x1 over a square input (a `default_size` kernel otherwise)."""
    height, width = input_tensor.shape.as_list()[1:3]
    size = height if height is not None and height == width else default_size
    return slim.avg_pool2d(input_tensor, kernel_size=[size, size], **kwargs)


def block(expansion: float, num_outputs: int, kernel: int, stride: int = 1,
          act: Callable = RELU, se: bool = False, **kwargs: Any) -> lib.Op:
    """An inverted-residual block: expansion ratio, outputs, kernel, stride, activation, SE."""
    return op(expanded_conv, expansion_size=expand_input_by_factor(expansion),
              kernel_size=(kernel, kernel), stride=stride, num_outputs=num_outputs,
              inner_activation_fn=act, expansion_transform=squeeze_excite_v3 if se else None,
              **kwargs)


def fused_block(expansion: float, num_outputs: int, kernel: int, stride: int = 1) -> lib.Op:
    """A fused block: a kxk conv expansion (no depthwise) and a 1x1 projection."""
    return op(expanded_conv, expansion_size=expand_input_by_factor(expansion),
              kernel_size=(kernel, kernel), stride=stride, num_outputs=num_outputs,
              expansion_fn=fused_expansion(kernel, stride), depthwise_location=None)


DEFAULTS = (
    ((expanded_conv,), {"normalizer_fn": slim.batch_norm, "residual": True}),
    ((slim.conv2d, slim.fully_connected, slim.separable_conv2d),
     {"normalizer_fn": slim.batch_norm, "activation_fn": RELU}),
    ((slim.batch_norm,), {"center": True, "scale": True}),
)


def _head(channels: int, features: int, act: Callable) -> tuple[lib.Op, ...]:
    """1x1 conv, pool to 1x1, 1x1 conv with biases (no batch norm)."""
    return (op(slim.conv2d, stride=1, kernel_size=[1, 1], num_outputs=channels,
               activation_fn=act),
            op(reduce_to_1x1, default_size=7, stride=1, padding="VALID"),
            op(slim.conv2d, stride=1, kernel_size=[1, 1], num_outputs=features,
               normalizer_fn=None, activation_fn=act))


def _large(minimal: bool) -> lib.ConvDefs:
    k5, se, hs = (3, False, RELU) if minimal else (5, True, HSWISH)
    return lib.ConvDefs(DEFAULTS, (
        op(slim.conv2d, stride=2, num_outputs=16, kernel_size=(3, 3), activation_fn=hs),
        block(1, 16, 3),                                 # 112 x 112 x 16
        block(4, 24, 3, 2), block(3, 24, 3),             # 56 x 56 x 24
        block(3, 40, k5, 2, se=se), block(3, 40, k5, se=se),
        block(3, 40, k5, se=se),                         # 28 x 28 x 40
        block(6, 80, 3, 2, hs), block(2.5, 80, 3, 1, hs),
        block(184 / 80., 80, 3, 1, hs), block(184 / 80., 80, 3, 1, hs),  # 14 x 14 x 80
        block(6, 112, 3, 1, hs, se), block(6, 112, 3, 1, hs, se),    # 14 x 14 x 112
        block(6, 160, k5, 2, hs, se), block(6, 160, k5, 1, hs, se),
        block(6, 160, k5, 1, hs, se),                    # 7 x 7 x 160
        *_head(960, 1280, hs),                           # 1 x 1 x 1280
    ))


def _small(minimal: bool) -> lib.ConvDefs:
    k5, se, hs = (3, False, RELU) if minimal else (5, True, HSWISH)
    return lib.ConvDefs(DEFAULTS, (
        op(slim.conv2d, stride=2, num_outputs=16, kernel_size=(3, 3), activation_fn=hs),
        block(1, 16, 3, 2, se=se),                       # 56 x 56 x 16
        block(72. / 16, 24, 3, 2), block(88. / 24, 24, 3),  # 28 x 28 x 24
        block(4, 40, k5, 2, hs, se), block(6, 40, k5, 1, hs, se),
        block(6, 40, k5, 1, hs, se),                     # 14 x 14 x 40
        block(3, 48, k5, 1, hs, se), block(3, 48, k5, 1, hs, se),    # 14 x 14 x 48
        block(6, 96, k5, 2, hs, se), block(6, 96, k5, 1, hs, se),
        block(6, 96, k5, 1, hs, se),                     # 7 x 7 x 96
        *_head(576, 1024, hs),                           # 1 x 1 x 1024
    ))


V3_LARGE = _large(minimal=False)
V3_LARGE_MINIMALISTIC = _large(minimal=True)
V3_SMALL = _small(minimal=False)
V3_SMALL_MINIMALISTIC = _small(minimal=True)

V3_EDGETPU = lib.ConvDefs(DEFAULTS, (
    op(slim.conv2d, stride=2, num_outputs=32, kernel_size=(3, 3)),  # 112 x 112 x 32
    fused_block(1, 16, 3),                                           # 112 x 112 x 16
    fused_block(8, 32, 3, 2), *(fused_block(4, 32, 3) for _ in range(3)),  # 56 x 56 x 32
    fused_block(8, 48, 3, 2), *(fused_block(4, 48, 3) for _ in range(3)),  # 28 x 28 x 48
    block(8, 96, 3, 2), *(block(4, 96, 3) for _ in range(3)),
    block(8, 96, 3, residual=False), *(block(4, 96, 3) for _ in range(3)),  # 14 x 14 x 96
    block(8, 160, 5, 2), *(block(4, 160, 5) for _ in range(3)),      # 7 x 7 x 160
    block(8, 192, 3),                                                # 7 x 7 x 192
    op(slim.conv2d, stride=1, num_outputs=1280, kernel_size=(1, 1)),  # 7 x 7 x 1280
))


@slim.add_arg_scope
def mobilenet(input_tensor: tf.Tensor, num_classes: int | None = 1001,
              depth_multiplier: float = 1.0, scope: str = "MobilenetV3",
              conv_defs: lib.ConvDefs | None = None, finegrain_classification_mode: bool = False,
              **kwargs: Any) -> tuple[tf.Tensor, dict]:
    """MobileNet v3 (Large by default) and EdgeTPU.

    Args:
      input_tensor: [batch, height, width, 3].
      num_classes: logits size; 0 or None returns the pooled features.
      depth_multiplier: scales every layer's channels (rounded to multiples of 8).
      scope: the variable scope.
      conv_defs: the architecture (`V3_LARGE` when None).
      finegrain_classification_mode: the last layer is not scaled by the
        depth multiplier.
      **kwargs: `is_training`, `min_depth`, `divisible_by`, `prediction_fn`,
        `reuse`, `base_only`, `final_endpoint`, `output_stride`,
        `use_explicit_padding` of `mobilenet.mobilenet`.

    Returns:
      (logits, end_points).
    """
    conv_defs = V3_LARGE if conv_defs is None else conv_defs
    if finegrain_classification_mode:
        conv_defs = conv_defs.with_last_op(scale_outputs=False)
    return lib.mobilenet(input_tensor, num_classes=num_classes, conv_defs=conv_defs, scope=scope,
                         multiplier=depth_multiplier, **kwargs)


mobilenet.default_image_size = 224


def mobilenet_base(input_tensor: tf.Tensor, depth_multiplier: float = 1.0,
                   **kwargs: Any) -> tuple[tf.Tensor, dict]:
    """The MobileNet v3 features (no head); `final_endpoint='layer_N'` stops early."""
    return mobilenet(input_tensor, depth_multiplier=depth_multiplier, base_only=True, **kwargs)


def training_scope(weight_decay: float = 0.00004, **kwargs: Any) -> dict:
    """MobileNet v3's arg scope (see `mobilenet.training_scope`)."""
    return lib.training_scope(weight_decay=weight_decay, **kwargs)


def _spec(name: str, scope: str, keras_twin: tuple[str, dict] | None = None,
          **fn_kwargs: Any) -> NetSpec:
    return NetSpec(name=name, fn=mobilenet, arg_scope=training_scope, default_image_size=224,
                   preprocessing="inception", predictions_op=f"{scope}/Predictions/Reshape_1",
                   logits_scopes=(f"{scope}/Logits",), fn_kwargs={"scope": scope, **fn_kwargs},
                   keras_twin=keras_twin)


_MINIMAL = {"minimalistic": True}
NETS = (
    _spec("mobilenet_v3_small", "MobilenetV3", ("MobileNetV3Small", {}), conv_defs=V3_SMALL),
    _spec("mobilenet_v3_large", "MobilenetV3", ("MobileNetV3Large", {}), conv_defs=V3_LARGE),
    _spec("mobilenet_v3_small_minimalistic", "MobilenetV3", ("MobileNetV3Small", _MINIMAL),
          conv_defs=V3_SMALL_MINIMALISTIC),
    _spec("mobilenet_v3_large_minimalistic", "MobilenetV3", ("MobileNetV3Large", _MINIMAL),
          conv_defs=V3_LARGE_MINIMALISTIC),
    _spec("mobilenet_edgetpu", "MobilenetEdgeTPU", conv_defs=V3_EDGETPU),
    _spec("mobilenet_edgetpu_075", "MobilenetEdgeTPU", conv_defs=V3_EDGETPU,
          depth_multiplier=0.75, finegrain_classification_mode=True),
)
