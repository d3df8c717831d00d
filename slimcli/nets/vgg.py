"""VGG of TF-Slim (Simonyan & Zisserman, 2014): configurations A, D and E from one builder.

`vgg_a`, `vgg_16` and `vgg_19` differ only in how many 3x3 convs each of the
five stages repeats (`VGG_REPEATS`). Variables (`vgg_16/conv3/conv3_2/weights`),
end points and the fully-convolutional classifier follow tensorflow/models
research/slim `nets/vgg.py`; the zoo checkpoints have 1000 classes.
"""

from __future__ import annotations

import functools
from typing import Sequence

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets.fc_conv_head import end_points_collection_name, fc_conv_head
from slimcli.nets.registry import LABELS_OFFSET_NOTE, TF_MODELS_URL, NetSpec, ZooCheckpoint

# Convs per stage; the stages have 64, 128, 256, 512, 512 channels.
VGG_REPEATS = {
    "vgg_a": (1, 1, 2, 2, 2),
    "vgg_16": (2, 2, 3, 3, 3),
    "vgg_19": (2, 2, 4, 4, 4),
}
STAGE_DEPTHS = (64, 128, 256, 512, 512)


def vgg(inputs, num_classes: int | None = 1000, is_training: bool = True,
        dropout_keep_prob: float = 0.5, spatial_squeeze: bool = True, reuse=None,
        scope: str = "vgg_16", fc_conv_padding: str = "VALID", global_pool: bool = False,
        repeats: Sequence[int] = VGG_REPEATS["vgg_16"]):
    """A VGG net: five stages of `repeats[i]` 3x3 convs + 2x2 max pool, then fc6-fc8 as convs.

    Args:
      inputs: [batch, 224, 224, 3] floats.
      num_classes: logits size; 0 or None returns the fc7 features.
      is_training: enables dropout.
      dropout_keep_prob: keep probability of dropout6 and dropout7.
      spatial_squeeze: squeeze the logits to [batch, num_classes].
      reuse: reuse the variables of an earlier build of `scope` in this call.
      scope: the variable scope (`vgg_a`, `vgg_16`, `vgg_19`).
      fc_conv_padding: fc6's padding; 'SAME' keeps the spatial size, giving
        per-location logits (use spatial_squeeze=False).
      global_pool: average fc7 over space.
      repeats: the number of convs in each of the five stages.

    Returns:
      (logits or features, end_points).

    Raises:
      SlimError: `repeats` does not give five positive counts.
    """
    if len(repeats) != len(STAGE_DEPTHS) or any(int(r) < 1 for r in repeats):
        raise SlimError(f"vgg: repeats must be {len(STAGE_DEPTHS)} positive conv counts, one per "
                        f"stage (e.g. {VGG_REPEATS['vgg_16']}); got repeats={tuple(repeats)}.")
    with slim.variable_scope(scope, "vgg", reuse=reuse) as sc:
        with slim.arg_scope([slim.conv2d, slim.fully_connected, slim.max_pool2d],
                            outputs_collections=end_points_collection_name(sc)):
            net = inputs
            for stage, (count, depth) in enumerate(zip(repeats, STAGE_DEPTHS), start=1):
                # 224 -> 112 -> 56 -> 28 -> 14 -> 7; 64 ... 512 channels
                net = slim.repeat(net, int(count), slim.conv2d, depth, [3, 3],
                                  scope=f"conv{stage}")
                net = slim.max_pool2d(net, [2, 2], scope=f"pool{stage}")
            # 7 x 7 x 512
            return fc_conv_head(net, sc, num_classes, is_training, dropout_keep_prob,
                                spatial_squeeze, global_pool, fc6_depth=4096, fc6_kernel=[7, 7],
                                fc6_padding=fc_conv_padding)


vgg.default_image_size = 224


def _variant(name: str):
    """`vgg_a`, `vgg_16`, `vgg_19` as functions of their own (the original's API)."""
    fn = functools.partial(vgg, scope=name, repeats=VGG_REPEATS[name])
    fn.__name__ = name
    fn.__doc__ = f"{name}: `vgg` with repeats={VGG_REPEATS[name]} and scope={name!r}."
    fn.default_image_size = 224
    return fn


vgg_a = _variant("vgg_a")
vgg_16 = _variant("vgg_16")
vgg_19 = _variant("vgg_19")


def vgg_arg_scope(weight_decay: float = 0.0005) -> dict:
    """ReLU convs and fully connected layers with zero biases and L2 decay; SAME convs.

    Args:
      weight_decay: L2 regularization of the weights.

    Returns:
      The arg-scope dict.
    """
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=tf.nn.relu,
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        biases_initializer=slim.zeros_initializer()):
        with slim.arg_scope([slim.conv2d], padding="SAME") as sc:
            return sc


# The model zoo's top-1 (VGG A was not published) and the keras.applications twins.
ZOO_TOP1 = {"vgg_16": 71.5, "vgg_19": 71.1}
KERAS_TWINS = {"vgg_16": "VGG16", "vgg_19": "VGG19"}


def _spec(name: str, repeats: tuple[int, ...]) -> NetSpec:
    zoo = ZooCheckpoint(f"{TF_MODELS_URL}{name}_2016_08_28.tar.gz", f"{name}.ckpt",
                        ZOO_TOP1[name], LABELS_OFFSET_NOTE) if name in ZOO_TOP1 else None
    return NetSpec(name=name, fn=vgg, arg_scope=vgg_arg_scope, default_image_size=224,
                   preprocessing="vgg", predictions_op=None, logits_scopes=(f"{name}/fc8",),
                   fn_kwargs={"scope": name, "repeats": repeats}, zoo_num_classes=1000, zoo=zoo,
                   keras_twin=(KERAS_TWINS[name], {}) if name in KERAS_TWINS else None)


NETS = tuple(_spec(name, repeats) for name, repeats in VGG_REPEATS.items())
