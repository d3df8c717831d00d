"""Building a net symbolically (a tf.function trace: variables, shapes, no compute)."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from slimcli import slim


def trace_net(fn: Callable, arg_scope: dict, shape: list[int], **kwargs):
    """Builds `fn(images, **kwargs)` in a trace under `arg_scope`.

    Returns:
      (model, output shape, {end point: shape}) — the model holds the variables.
    """
    model = slim.Model(fn)
    seen = {}

    def forward(images):
        with slim.arg_scope(arg_scope):
            net, end_points = model(images, **kwargs)
        seen["output"] = net.shape.as_list()
        seen["end_points"] = {k: v.shape.as_list() for k, v in end_points.items()}
        return net

    tf.function(forward, autograph=False).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    return model, seen["output"], seen["end_points"]
