"""TF-Slim's layers: same names, defaults, scopes and variable names, in TF2.

Every layer with variables opens a variable scope (`Conv`, `fully_connected`,
`BatchNorm`, ... made unique in their parent, or the `scope` given) and asks the
active store for `weights`, `biases`, `depthwise_weights`, ... Layers without
variables open a name scope. Inputs are NHWC. Weights are cast to the input's
dtype, so float16/bfloat16 inputs compute in that precision with float32
variables (mixed precision).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim import initializers, utils
from slimcli.slim.quantize import fold as quant_fold
from slimcli.slim.quantize import layer as quant_layer
from slimcli.slim.quantize import state as quant_state
from slimcli.slim.quantize.state import layer_body
from slimcli.slim.scopes import add_arg_scope, name_scope, variable_scope
from slimcli.slim.variables import model_variable

__all__ = [
    "conv2d", "convolution2d", "separable_conv2d", "separable_convolution2d", "conv2d_transpose",
    "convolution2d_transpose", "conv2d_in_plane", "fully_connected", "batch_norm", "bias_add",
    "avg_pool2d", "max_pool2d", "dropout", "flatten", "one_hot_encoding", "unit_norm", "softmax",
    "repeat", "stack",
]

_XAVIER = initializers.xavier_initializer()
_ZEROS = initializers.zeros_initializer()


def _as_input(inputs: Any, rank: int, layer: str) -> tf.Tensor:
    x = tf.convert_to_tensor(inputs)
    if x.shape.rank is not None and x.shape.rank != rank:
        raise SlimError(f"{layer}: expected a rank-{rank} input "
                        f"{'[batch, height, width, channels]' if rank == 4 else ''}, "
                        f"got shape {x.shape}.")
    return x


def _check_format(data_format: str | None, layer: str) -> None:
    if data_format not in (None, "NHWC"):
        raise SlimError(f"{layer}: data_format={data_format!r} is not supported; use NHWC "
                        f"(TensorFlow converts layouts for the GPU itself).")


def _cast(var: tf.Variable, like: tf.Tensor) -> tf.Tensor:
    return tf.cast(var, like.dtype) if var.dtype != like.dtype else var


def _finish(outputs: tf.Tensor, activation_fn: Callable | None, outputs_collections: Any,
            alias: str) -> tf.Tensor:
    if activation_fn is not None:
        outputs = activation_fn(outputs)
    return utils.collect_named_outputs(outputs_collections, alias, outputs)


def _normalize_or_bias(outputs: tf.Tensor, num_outputs: int, normalizer_fn: Callable | None,
                       normalizer_params: dict | None, biases_initializer: Any,
                       biases_regularizer: Callable | None, variables_collections: Any,
                       trainable: bool) -> tf.Tensor:
    """Applies the normalizer, or else adds `biases` (TF-Slim's rule)."""
    if normalizer_fn is not None:
        return normalizer_fn(outputs, **(normalizer_params or {}))
    if biases_initializer is not None:
        biases = model_variable("biases", [num_outputs], initializer=biases_initializer,
                                regularizer=biases_regularizer, trainable=trainable,
                                collections=_cols(variables_collections, "biases"))
        outputs = tf.nn.bias_add(outputs, _cast(biases, outputs))
    return outputs


def _weight_layer_output(sc: Any, x: tf.Tensor, weights: tf.Variable,
                         conv: Callable[[Any], tf.Tensor], channels: int,
                         normalizer_fn: Callable | None, normalizer_params: dict | None,
                         biases_initializer: Any, biases_regularizer: Callable | None,
                         variables_collections: Any, trainable: bool,
                         activation_fn: Callable | None, outputs_collections: Any,
                         depthwise: bool = False) -> tf.Tensor:
    """conv(weights), then the normalizer or biases and the activation; in a quantized
    call (`slimcli.slim.quantize`), the same with the batch norm folded and fake quant."""
    def normalize(y: tf.Tensor) -> tf.Tensor:
        return _normalize_or_bias(y, channels, normalizer_fn, normalizer_params,
                                  biases_initializer, biases_regularizer, variables_collections,
                                  trainable)

    state = quant_state.current()
    if state is not None:
        y = quant_layer.quantized_layer(state, quant_layer.LayerCall(
            sc, x, weights, conv, normalize, normalizer_fn is not None, activation_fn,
            depthwise))
        return utils.collect_named_outputs(outputs_collections, sc.name, y)
    return _finish(normalize(conv(weights)), activation_fn, outputs_collections, sc.name)


def _cols(variables_collections: Any, key: str) -> list[str]:
    """Collections for one variable: a list for all, or a dict keyed by variable name."""
    if variables_collections is None:
        return []
    if isinstance(variables_collections, dict):
        value = variables_collections.get(key) or []
        return [value] if isinstance(value, str) else list(value)
    if isinstance(variables_collections, str):
        return [variables_collections]
    return list(variables_collections)


@add_arg_scope
@layer_body
def conv2d(inputs, num_outputs: int, kernel_size, stride=1, padding: str = "SAME",
           data_format: str | None = None, rate=1, activation_fn=tf.nn.relu,
           normalizer_fn=None, normalizer_params=None, weights_initializer=_XAVIER,
           weights_regularizer=None, biases_initializer=_ZEROS, biases_regularizer=None,
           reuse=None, variables_collections=None, outputs_collections=None,
           trainable: bool = True, scope=None):
    """2-D convolution: variables `weights` [kh, kw, in, out] and `biases` [out].

    With `normalizer_fn` (e.g. batch_norm) there are no biases. `rate` > 1 is
    an atrous (dilated) convolution; it cannot be combined with `stride` > 1.
    """
    _check_format(data_format, "conv2d")
    with variable_scope(scope, "Conv", reuse=reuse) as sc:
        x = _as_input(inputs, 4, "conv2d")
        kh, kw = utils.two_element_tuple(kernel_size)
        sh, sw = utils.two_element_tuple(stride)
        rh, rw = utils.two_element_tuple(rate)
        if (rh > 1 or rw > 1) and (sh > 1 or sw > 1):
            raise SlimError(f"conv2d {sc.name}: rate={rate} and stride={stride} cannot both be > 1.")
        c_in = utils.last_dimension(x.shape, 4)
        weights = model_variable("weights", [kh, kw, c_in, num_outputs],
                                 initializer=weights_initializer, regularizer=weights_regularizer,
                                 trainable=trainable,
                                 collections=_cols(variables_collections, "weights"))

        def conv(w):
            if _covers_whole_input(x, kh, kw, padding, rh, rw):
                return _whole_input_conv(x, _cast(w, x))
            return tf.nn.conv2d(x, _cast(w, x), strides=[1, sh, sw, 1], padding=padding,
                                dilations=[1, rh, rw, 1])
        return _weight_layer_output(sc, x, weights, conv, num_outputs, normalizer_fn,
                                    normalizer_params, biases_initializer, biases_regularizer,
                                    variables_collections, trainable, activation_fn,
                                    outputs_collections)


convolution2d = conv2d


def _covers_whole_input(x: tf.Tensor, kh: int, kw: int, padding: str, rh: int, rw: int) -> bool:
    """True for a VALID, undilated kernel exactly the size of the static input map."""
    return (padding == "VALID" and rh == 1 and rw == 1
            and x.shape[1] == kh and x.shape[2] == kw)


def _whole_input_conv(x: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """The same result as the convolution, as one matmul (fc6 of VGG/AlexNet/OverFeat).

    A kernel covering the whole map gives a 1x1 output: a fully connected layer
    on the flattened map, which CPU kernels run several times faster than conv.
    """
    kh, kw, c_in, c_out = weights.shape.as_list()
    flat = tf.reshape(x, [-1, kh * kw * c_in])
    y = tf.matmul(flat, tf.reshape(weights, [kh * kw * c_in, c_out]))
    return tf.reshape(y, [-1, 1, 1, c_out])


@add_arg_scope
@layer_body
def separable_conv2d(inputs, num_outputs: int | None, kernel_size, depth_multiplier: int = 1,
                     stride=1, padding: str = "SAME", data_format: str | None = None, rate=1,
                     activation_fn=tf.nn.relu, normalizer_fn=None, normalizer_params=None,
                     weights_initializer=_XAVIER, pointwise_initializer=None,
                     weights_regularizer=None, biases_initializer=_ZEROS, biases_regularizer=None,
                     reuse=None, variables_collections=None, outputs_collections=None,
                     trainable: bool = True, scope=None):
    """Depthwise-separable convolution.

    With `num_outputs`: `depthwise_weights` [k, k, C, m] then
    `pointwise_weights` [1, 1, C*m, num_outputs]. With `num_outputs=None`:
    depthwise only (MobileNet), output channels C*m.
    """
    _check_format(data_format, "separable_conv2d")
    with variable_scope(scope, "SeparableConv2d", reuse=reuse) as sc:
        x = _as_input(inputs, 4, "separable_conv2d")
        kh, kw = utils.two_element_tuple(kernel_size)
        sh, sw = utils.two_element_tuple(stride)
        rh, rw = utils.two_element_tuple(rate)
        c_in = utils.last_dimension(x.shape, 4)
        depthwise = model_variable("depthwise_weights", [kh, kw, c_in, depth_multiplier],
                                   initializer=weights_initializer,
                                   regularizer=weights_regularizer, trainable=trainable,
                                   collections=_cols(variables_collections, "weights"))
        strides = [1, sh, sw, 1]

        def depthwise_conv(w):
            return tf.nn.depthwise_conv2d(x, _cast(w, x), strides, padding, dilations=[rh, rw])
        if num_outputs is None:
            return _weight_layer_output(sc, x, depthwise, depthwise_conv, c_in * depth_multiplier,
                                        normalizer_fn, normalizer_params, biases_initializer,
                                        biases_regularizer, variables_collections, trainable,
                                        activation_fn, outputs_collections, depthwise=True)
        pointwise = model_variable("pointwise_weights",
                                   [1, 1, c_in * depth_multiplier, num_outputs],
                                   initializer=pointwise_initializer or weights_initializer,
                                   regularizer=weights_regularizer, trainable=trainable,
                                   collections=_cols(variables_collections, "weights"))
        state = quant_state.current()
        if state is not None:  # the original quantized the depthwise half on its own
            inner = quant_layer.depthwise_part(state, sc, x, depthwise, depthwise_conv)

            def conv(w):
                return tf.nn.conv2d(inner, _cast(w, inner), [1, 1, 1, 1], "VALID")
        else:
            def conv(w):
                return tf.nn.separable_conv2d(x, _cast(depthwise, x), _cast(w, x), strides,
                                              padding, dilations=[rh, rw])
        return _weight_layer_output(sc, x, pointwise, conv, num_outputs, normalizer_fn,
                                    normalizer_params, biases_initializer, biases_regularizer,
                                    variables_collections, trainable, activation_fn,
                                    outputs_collections)


separable_convolution2d = separable_conv2d


@add_arg_scope
@layer_body
def conv2d_transpose(inputs, num_outputs: int, kernel_size, stride=1, padding: str = "SAME",
                     data_format: str | None = None, activation_fn=tf.nn.relu, normalizer_fn=None,
                     normalizer_params=None, weights_initializer=_XAVIER, weights_regularizer=None,
                     biases_initializer=_ZEROS, biases_regularizer=None, reuse=None,
                     variables_collections=None, outputs_collections=None,
                     trainable: bool = True, scope=None):
    """Transposed convolution: `weights` [kh, kw, num_outputs, in]."""
    _check_format(data_format, "conv2d_transpose")
    with variable_scope(scope, "Conv2d_transpose", reuse=reuse) as sc:
        quant_layer.refuse(quant_state.current(), "conv2d_transpose", sc.name)
        x = _as_input(inputs, 4, "conv2d_transpose")
        kh, kw = utils.two_element_tuple(kernel_size)
        sh, sw = utils.two_element_tuple(stride)
        c_in = utils.last_dimension(x.shape, 4)
        weights = model_variable("weights", [kh, kw, num_outputs, c_in],
                                 initializer=weights_initializer, regularizer=weights_regularizer,
                                 trainable=trainable,
                                 collections=_cols(variables_collections, "weights"))
        shape = tf.shape(x)
        if padding == "SAME":
            out_h, out_w = shape[1] * sh, shape[2] * sw
        else:
            out_h = shape[1] * sh + max(kh - sh, 0)
            out_w = shape[2] * sw + max(kw - sw, 0)
        y = tf.nn.conv2d_transpose(x, _cast(weights, x),
                                   tf.stack([shape[0], out_h, out_w, num_outputs]),
                                   strides=[1, sh, sw, 1], padding=padding)
        static = x.shape
        y.set_shape([static[0],
                     None if static[1] is None else (static[1] * sh if padding == "SAME"
                                                     else static[1] * sh + max(kh - sh, 0)),
                     None if static[2] is None else (static[2] * sw if padding == "SAME"
                                                     else static[2] * sw + max(kw - sw, 0)),
                     num_outputs])
        y = _normalize_or_bias(y, num_outputs, normalizer_fn, normalizer_params,
                               biases_initializer, biases_regularizer, variables_collections,
                               trainable)
        return _finish(y, activation_fn, outputs_collections, sc.name)


convolution2d_transpose = conv2d_transpose


@add_arg_scope
@layer_body
def conv2d_in_plane(inputs, kernel_size, stride=1, padding: str = "SAME",
                    activation_fn=tf.nn.relu, normalizer_fn=None, normalizer_params=None,
                    weights_initializer=_XAVIER, weights_regularizer=None,
                    biases_initializer=_ZEROS, biases_regularizer=None, reuse=None,
                    variables_collections=None, outputs_collections=None,
                    trainable: bool = True, scope=None):
    """The same 2-D filter (`weights` [kh, kw, 1, 1]) applied to every channel."""
    with variable_scope(scope, "ConvInPlane", reuse=reuse) as sc:
        quant_layer.refuse(quant_state.current(), "conv2d_in_plane", sc.name)
        x = _as_input(inputs, 4, "conv2d_in_plane")
        kh, kw = utils.two_element_tuple(kernel_size)
        sh, sw = utils.two_element_tuple(stride)
        c_in = utils.last_dimension(x.shape, 4)
        weights = model_variable("weights", [kh, kw, 1, 1], initializer=weights_initializer,
                                 regularizer=weights_regularizer, trainable=trainable,
                                 collections=_cols(variables_collections, "weights"))
        kernel = tf.tile(_cast(weights, x), [1, 1, c_in, 1])
        y = tf.nn.depthwise_conv2d(x, kernel, [1, sh, sw, 1], padding)
        y = _normalize_or_bias(y, c_in, normalizer_fn, normalizer_params, biases_initializer,
                               biases_regularizer, variables_collections, trainable)
        return _finish(y, activation_fn, outputs_collections, sc.name)


@add_arg_scope
@layer_body
def fully_connected(inputs, num_outputs: int, activation_fn=tf.nn.relu, normalizer_fn=None,
                    normalizer_params=None, weights_initializer=_XAVIER,
                    weights_regularizer=None, biases_initializer=_ZEROS,
                    biases_regularizer=None, reuse=None, variables_collections=None,
                    outputs_collections=None, trainable: bool = True, scope=None):
    """Dense layer: `weights` [in, out], `biases` [out]; acts on the last dimension."""
    with variable_scope(scope, "fully_connected", reuse=reuse) as sc:
        x = tf.convert_to_tensor(inputs)
        c_in = utils.last_dimension(x.shape, 2)
        weights = model_variable("weights", [c_in, num_outputs], initializer=weights_initializer,
                                 regularizer=weights_regularizer, trainable=trainable,
                                 collections=_cols(variables_collections, "weights"))

        def matmul(w):
            w = _cast(w, x)
            if x.shape.rank == 2:
                return tf.matmul(x, w)
            return tf.tensordot(x, w, [[x.shape.rank - 1], [0]])
        return _weight_layer_output(sc, x, weights, matmul, num_outputs, normalizer_fn,
                                    normalizer_params, biases_initializer, biases_regularizer,
                                    variables_collections, trainable, activation_fn,
                                    outputs_collections)


def _moving_stat(name: str, shape: list, initializer: Any, variables_collections: Any):
    return model_variable(name, shape, initializer=initializer, trainable=False,
                          collections=_cols(variables_collections, name),
                          synchronization=tf.VariableSynchronization.ON_READ,
                          aggregation=tf.VariableAggregation.MEAN)


def _bn_params(channels: int, center: bool, scale: bool, param_initializers: dict | None,
               param_regularizers: dict | None, variables_collections: Any, trainable: bool):
    inits = param_initializers or {}
    regs = param_regularizers or {}
    gamma = beta = None
    if scale:
        gamma = model_variable("gamma", [channels],
                               initializer=inits.get("gamma", initializers.ones_initializer()),
                               regularizer=regs.get("gamma"), trainable=trainable,
                               collections=_cols(variables_collections, "gamma"))
    if center:
        beta = model_variable("beta", [channels],
                              initializer=inits.get("beta", initializers.zeros_initializer()),
                              regularizer=regs.get("beta"), trainable=trainable,
                              collections=_cols(variables_collections, "beta"))
    mean = _moving_stat("moving_mean", [channels],
                        inits.get("moving_mean", initializers.zeros_initializer()),
                        variables_collections)
    var = _moving_stat("moving_variance", [channels],
                       inits.get("moving_variance", initializers.ones_initializer()),
                       variables_collections)
    return gamma, beta, mean, var


def _update_moving(moving: tf.Variable, value: tf.Tensor, decay: float) -> None:
    moving.assign_sub((moving - tf.cast(value, moving.dtype)) * (1.0 - decay))


@add_arg_scope
@layer_body
def batch_norm(inputs, decay: float = 0.999, center: bool = True, scale: bool = False,
               epsilon: float = 0.001, activation_fn=None, param_initializers=None,
               param_regularizers=None, updates_collections="update_ops",
               is_training: bool = True, reuse=None, variables_collections=None,
               outputs_collections=None, trainable: bool = True, fused=None,
               data_format: str | None = None, zero_debias_moving_mean: bool = False, scope=None):
    """Batch normalization with TF-Slim's variables under `BatchNorm/`.

    `beta` (center), `gamma` (scale; off by default, as in TF-Slim),
    `moving_mean`, `moving_variance`. When `is_training` the batch statistics
    normalize and the moving statistics are updated in the call
    (`moving -= (moving - batch) * (1 - decay)`); otherwise the moving
    statistics normalize and nothing changes. `updates_collections` and
    `fused` are accepted for compatibility: updates always happen in the
    call, and the fused kernel is used for 4-D inputs.
    """
    del updates_collections, fused
    _check_format(data_format, "batch_norm")
    if zero_debias_moving_mean:
        raise SlimError("batch_norm: zero_debias_moving_mean=True is not supported; leave it False.")
    if not isinstance(is_training, bool):
        raise SlimError(f"batch_norm: is_training must be a Python bool, got {is_training!r}.")
    with variable_scope(scope, "BatchNorm", reuse=reuse) as sc:
        x = tf.convert_to_tensor(inputs)
        channels = utils.last_dimension(x.shape, 2)
        gamma, beta, mean, var = _bn_params(channels, center, scale, param_initializers,
                                            param_regularizers, variables_collections, trainable)
        state = quant_state.current()
        if state is not None:
            folded = quant_fold.batch_norm_in_layer(state, sc.name, x, gamma, beta, mean, var,
                                                    epsilon, is_training, decay, activation_fn)
            if folded is not None:
                return folded
        pdtype = tf.float32
        g = tf.ones([channels], pdtype) if gamma is None else tf.cast(gamma, pdtype)
        b = tf.zeros([channels], pdtype) if beta is None else tf.cast(beta, pdtype)
        if x.shape.rank == 4:
            if is_training:
                y, batch_mean, batch_var = tf.compat.v1.nn.fused_batch_norm(
                    x, g, b, epsilon=epsilon, is_training=True)
            else:
                y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                    x, g, b, mean=tf.cast(mean, pdtype), variance=tf.cast(var, pdtype),
                    epsilon=epsilon, is_training=False)
        else:
            xf = tf.cast(x, pdtype)
            axes = list(range(x.shape.rank - 1))
            if is_training:
                batch_mean, batch_var = tf.nn.moments(xf, axes)
                m, v = batch_mean, batch_var
            else:
                m, v = tf.cast(mean, pdtype), tf.cast(var, pdtype)
            y = tf.cast(tf.nn.batch_normalization(xf, m, v, b, g, epsilon), x.dtype)
        if is_training:
            _update_moving(mean, batch_mean, decay)
            _update_moving(var, batch_var, decay)
        return _finish(y, activation_fn, outputs_collections, sc.name)


@add_arg_scope
@layer_body
def bias_add(inputs, activation_fn=None, initializer=_ZEROS, regularizer=None, reuse=None,
             variables_collections=None, outputs_collections=None, trainable: bool = True,
             data_format: str | None = None, scope=None):
    """Adds `biases` [channels] to the last dimension."""
    _check_format(data_format, "bias_add")
    with variable_scope(scope, "BiasAdd", reuse=reuse) as sc:
        quant_layer.refuse(quant_state.current(), "bias_add", sc.name)
        x = tf.convert_to_tensor(inputs)
        channels = utils.last_dimension(x.shape, 2)
        biases = model_variable("biases", [channels], initializer=initializer,
                                regularizer=regularizer, trainable=trainable,
                                collections=_cols(variables_collections, "biases"))
        y = tf.nn.bias_add(x, _cast(biases, x))
        return _finish(y, activation_fn, outputs_collections, sc.name)


def _pool(kind: str, inputs, kernel_size, stride, padding, data_format, outputs_collections,
          scope, default_name):
    _check_format(data_format, f"{kind}_pool2d")
    with name_scope(scope, default_name) as sc:
        x = _as_input(inputs, 4, f"{kind}_pool2d")
        kh, kw = utils.two_element_tuple(kernel_size)
        sh, sw = utils.two_element_tuple(stride)
        pool = tf.nn.avg_pool2d if kind == "avg" else tf.nn.max_pool2d
        y = pool(x, [1, kh, kw, 1], [1, sh, sw, 1], padding)
        return utils.collect_named_outputs(outputs_collections, sc, y)


@add_arg_scope
def avg_pool2d(inputs, kernel_size, stride=2, padding: str = "VALID",
               data_format: str | None = None, outputs_collections=None, scope=None):
    """Average pooling (name scope `AvgPool2D`)."""
    return _pool("avg", inputs, kernel_size, stride, padding, data_format, outputs_collections,
                 scope, "AvgPool2D")


@add_arg_scope
def max_pool2d(inputs, kernel_size, stride=2, padding: str = "VALID",
               data_format: str | None = None, outputs_collections=None, scope=None):
    """Max pooling (name scope `MaxPool2D`)."""
    return _pool("max", inputs, kernel_size, stride, padding, data_format, outputs_collections,
                 scope, "MaxPool2D")


@add_arg_scope
@layer_body
def dropout(inputs, keep_prob: float = 0.5, noise_shape=None, is_training: bool = True,
            outputs_collections=None, scope=None, seed: int | None = None):
    """Keeps each unit with probability `keep_prob` (scaled by 1/keep_prob) when training."""
    if not 0.0 < keep_prob <= 1.0:
        raise SlimError(f"dropout: expected keep_prob in (0, 1]. Received: keep_prob={keep_prob}")
    with name_scope(scope, "Dropout") as sc:
        x = tf.convert_to_tensor(inputs)
        kept = x
        if is_training and keep_prob < 1.0:
            kept = tf.nn.dropout(x, rate=1.0 - keep_prob, noise_shape=noise_shape, seed=seed)
        quant_state.note_passthrough(x, kept)
        return utils.collect_named_outputs(outputs_collections, sc, kept)


@add_arg_scope
def flatten(inputs, outputs_collections=None, scope=None):
    """[batch, ...] → [batch, k]."""
    with name_scope(scope, "Flatten") as sc:
        x = tf.convert_to_tensor(inputs)
        if x.shape.rank is not None and x.shape.rank < 2:
            raise SlimError(f"flatten: expected rank >= 2, got shape {x.shape}.")
        rest = x.shape[1:]
        if rest.is_fully_defined():
            y = tf.reshape(x, [-1, rest.num_elements()])
        else:
            y = tf.reshape(x, tf.stack([tf.shape(x)[0], -1]))
        return utils.collect_named_outputs(outputs_collections, sc, y)


@add_arg_scope
def one_hot_encoding(labels, num_classes: int, on_value: float = 1.0, off_value: float = 0.0,
                     outputs_collections=None, scope=None):
    """Integer labels → one-hot float vectors."""
    with name_scope(scope, "OneHotEncoding") as sc:
        y = tf.one_hot(tf.cast(labels, tf.int64), num_classes, on_value=on_value,
                       off_value=off_value)
        return utils.collect_named_outputs(outputs_collections, sc, y)


@add_arg_scope
def unit_norm(inputs, dim: int, epsilon: float = 1e-7, scope=None):
    """Divides by the L2 norm along `dim`."""
    with name_scope(scope, "UnitNorm"):
        x = tf.convert_to_tensor(inputs)
        norm = tf.sqrt(tf.reduce_sum(tf.square(x), axis=dim, keepdims=True) + epsilon)
        return x / norm


@add_arg_scope
def softmax(logits, scope=None):
    """Softmax over the last dimension, via the same ops as TF-Slim.

    The op names are `<scope>/Reshape`, `<scope>/Softmax`, `<scope>/Shape`,
    `<scope>/Reshape_1`, so an exported graph's prediction node keeps the
    original's name (`InceptionV3/Predictions/Reshape_1`).
    """
    with name_scope(scope, "softmax"):
        x = tf.convert_to_tensor(logits)
        classes = utils.last_dimension(x.shape, 2)
        flat = tf.reshape(x, [-1, classes])
        probs = tf.nn.softmax(flat)
        return tf.reshape(probs, tf.shape(x))


def repeat(inputs, repetitions: int, layer: Callable, *args, **kwargs):
    """Applies `layer` `repetitions` times, scopes `<scope>/<scope>_1`, `_2`, ...

    `slim.repeat(net, 3, slim.conv2d, 256, [3, 3], scope='conv3')` makes
    `conv3/conv3_1`, `conv3/conv3_2`, `conv3/conv3_3`.
    """
    scope = kwargs.pop("scope", None)
    with variable_scope(scope, "Repeat"):
        base = scope or _layer_name(layer, "repeat")
        outputs = inputs
        for i in range(repetitions):
            kwargs["scope"] = f"{base}_{i + 1}"
            outputs = layer(outputs, *args, **kwargs)
        return outputs


def stack(inputs, layer: Callable, stack_args: Sequence, **kwargs):
    """Applies `layer` once per entry of `stack_args`, scopes `<scope>/<scope>_1`, ...

    `slim.stack(x, slim.fully_connected, [32, 64, 128], scope='fc')` makes
    `fc/fc_1`, `fc/fc_2`, `fc/fc_3`. A tuple entry is unpacked as positional
    arguments.
    """
    scope = kwargs.pop("scope", None)
    if not isinstance(stack_args, (list, tuple)):
        raise SlimError(f"stack: stack_args must be a list or tuple, got {type(stack_args).__name__}.")
    with variable_scope(scope, "Stack"):
        base = scope or _layer_name(layer, "stack")
        outputs = inputs
        for i, entry in enumerate(stack_args):
            kwargs["scope"] = f"{base}_{i + 1}"
            args = entry if isinstance(entry, (list, tuple)) else [entry]
            outputs = layer(outputs, *args, **kwargs)
        return outputs


def _layer_name(layer: Callable, default: str) -> str:
    if hasattr(layer, "__name__"):
        return layer.__name__
    if hasattr(layer, "func"):
        return layer.func.__name__
    return default
