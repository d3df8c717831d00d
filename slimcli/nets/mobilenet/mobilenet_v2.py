"""MobileNet v2 (Sandler et al., 2018, arXiv:1801.04381) as conv defs.

A 3x3 stem conv, 17 inverted-residual blocks, a 1x1 conv to 1280 channels;
scope `MobilenetV2`. Follows tensorflow/models research/slim
`nets/mobilenet/mobilenet_v2.py`; the depth-multiplier variants keep the
variable names.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from slimcli import slim
from slimcli.nets.mobilenet import mobilenet as lib
from slimcli.nets.mobilenet.conv_blocks import expand_input_by_factor, expanded_conv
from slimcli.nets.mobilenet.mobilenet import op
from slimcli.nets.registry import NetSpec, ZooCheckpoint, open_model_zoo_pin


def _block(stride: int, num_outputs: int) -> lib.Op:
    return op(expanded_conv, stride=stride, num_outputs=num_outputs)


# (stride, num_outputs) of the blocks after the first (which does not expand).
_V2_BLOCKS = ((2, 24), (1, 24), (2, 32), (1, 32), (1, 32), (2, 64), (1, 64), (1, 64), (1, 64),
              (1, 96), (1, 96), (1, 96), (2, 160), (1, 160), (1, 160), (1, 320))

V2_DEF = lib.ConvDefs(
    defaults=(
        # These batch-norm and activation settings are part of the architecture.
        ((slim.batch_norm,), {"center": True, "scale": True}),
        ((slim.conv2d, slim.fully_connected, slim.separable_conv2d),
         {"normalizer_fn": slim.batch_norm, "activation_fn": tf.nn.relu6}),
        ((expanded_conv,), {"expansion_size": expand_input_by_factor(6),
                            "normalizer_fn": slim.batch_norm, "residual": True}),
        ((slim.conv2d, slim.separable_conv2d), {"padding": "SAME"}),
    ),
    spec=(
        op(slim.conv2d, stride=2, num_outputs=32, kernel_size=[3, 3]),       # 112 x 112 x 32
        op(expanded_conv, expansion_size=expand_input_by_factor(1, divisible_by=1),
           num_outputs=16),                                                    # 112 x 112 x 16
        *(_block(stride, depth) for stride, depth in _V2_BLOCKS),            # 7 x 7 x 320
        op(slim.conv2d, stride=1, kernel_size=[1, 1], num_outputs=1280),     # 7 x 7 x 1280
    ),
)


def _with_activation(conv_defs: lib.ConvDefs, activation_fn: Callable) -> lib.ConvDefs:
    key = (slim.conv2d, slim.fully_connected, slim.separable_conv2d)
    defaults = tuple((ops, {**kw, "activation_fn": activation_fn}) if ops == key else (ops, kw)
                     for ops, kw in conv_defs.defaults)
    return lib.ConvDefs(defaults, conv_defs.spec)


@slim.add_arg_scope
def mobilenet(input_tensor: tf.Tensor, num_classes: int | None = 1001,
              depth_multiplier: float = 1.0, scope: str = "MobilenetV2",
              conv_defs: lib.ConvDefs | None = None, finegrain_classification_mode: bool = False,
              min_depth: int | None = None, divisible_by: int | None = None,
              activation_fn: Callable | None = None, **kwargs: Any) -> tuple[tf.Tensor, dict]:
    """MobileNet v2.

    Args:
      input_tensor: [batch, height, width, 3].
      num_classes: logits size; 0 or None returns the pooled features.
      depth_multiplier: scales every layer's channels (rounded to multiples of 8).
      scope: the variable scope.
      conv_defs: the architecture (`V2_DEF` when None).
      finegrain_classification_mode: keep the last layer at 1280 channels when
        `depth_multiplier` < 1 (the 0.35 and 0.5 nets of the zoo).
      min_depth: the smallest channel count (8 when None).
      divisible_by: channel multiple (8 when None).
      activation_fn: replaces relu6 everywhere when given.
      **kwargs: `is_training`, `prediction_fn`, `reuse`, `base_only`,
        `final_endpoint`, `output_stride`, `use_explicit_padding` of
        `mobilenet.mobilenet`.

    Returns:
      (logits, end_points).
    """
    conv_defs = V2_DEF if conv_defs is None else conv_defs
    if finegrain_classification_mode and depth_multiplier < 1:
        last = dict(conv_defs.spec[-1].params)
        last["num_outputs"] = last["num_outputs"] / depth_multiplier
        conv_defs = conv_defs.with_last_op(params=last)
    if activation_fn:
        conv_defs = _with_activation(conv_defs, activation_fn)
    depth_args = {k: v for k, v in (("min_depth", min_depth), ("divisible_by", divisible_by))
                  if v is not None}
    return lib.mobilenet(input_tensor, num_classes=num_classes, conv_defs=conv_defs, scope=scope,
                         multiplier=depth_multiplier, **depth_args, **kwargs)


mobilenet.default_image_size = 224


def mobilenet_base(input_tensor: tf.Tensor, depth_multiplier: float = 1.0,
                   **kwargs: Any) -> tuple[tf.Tensor, dict]:
    """The MobileNet v2 features (no head); `final_endpoint='layer_N'` stops early."""
    return mobilenet(input_tensor, depth_multiplier=depth_multiplier, base_only=True, **kwargs)


def training_scope(weight_decay: float = 0.00004, **kwargs: Any) -> dict:
    """MobileNet v2's arg scope (see `mobilenet.training_scope`)."""
    return lib.training_scope(weight_decay=weight_decay, **kwargs)


ZOO_URL = "https://storage.googleapis.com/mobilenet_v2/checkpoints/"


def _spec(name: str, zoo: str = "", top1: float = 0.0, pin: dict | None = None,
          **fn_kwargs: Any) -> NetSpec:
    """One variant; `zoo` names the published archive (`1.0_224`) with its `top1` and `pin`
    (`open_model_zoo_pin`)."""
    checkpoint = ZooCheckpoint(f"{ZOO_URL}mobilenet_v2_{zoo}.tgz", f"mobilenet_v2_{zoo}.ckpt",
                               top1, **(pin or {})) if zoo else None
    width = fn_kwargs.get("depth_multiplier")
    return NetSpec(name=name, fn=mobilenet, arg_scope=training_scope, default_image_size=224,
                   preprocessing="inception", predictions_op="MobilenetV2/Predictions/Reshape_1",
                   logits_scopes=("MobilenetV2/Logits",), fn_kwargs=fn_kwargs, zoo=checkpoint,
                   keras_twin=("MobileNetV2", {"alpha": width} if width else {}))


NETS = (
    # Digests: open_model_zoo models/public/mobilenet-v2-{1.0,1.4}-224/model.yml.
    _spec("mobilenet_v2", "1.0_224", 71.9, open_model_zoo_pin(
        "mobilenet-v2-1.0-224",
        "sha256:318084bc1b63d6d7b854553e09cdf77078b1c0168be27c59a0d44253b5ed49dc", 78306834)),
    _spec("mobilenet_v2_140", "1.4_224", 74.9, open_model_zoo_pin(
        "mobilenet-v2-1.4-224", "sha384:fd257f73e8ee5280328903afa6bbd646dcf4e8ae7c090e3424cf05d9"
        "73c0940fe02ee220a3a5a20ea51cb9caacbf4961", 135977516), depth_multiplier=1.4),
    _spec("mobilenet_v2_035", depth_multiplier=0.35, finegrain_classification_mode=True),
)
