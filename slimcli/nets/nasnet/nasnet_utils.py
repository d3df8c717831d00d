"""Building blocks shared by NASNet-A and PNASNet: cells, factorized reduction, drop-path.

A cell is described by data (`CellSpec`): ten operation strings
(`separable_5x5_2`, `avg_pool_3x3`, `max_pool_3x3`, `none`), the hidden-state
index each operation reads, and which hidden states are consumed inside the
cell (the others are concatenated into the cell's output). `Cell` turns a spec
into TF-Slim layers with the original's scope and variable names
(`cell_3/comb_iter_0/left/separable_5x5_1/depthwise_weights`,
`.../bn_sep_5x5_1/gamma`, `cell_3/1x1/weights`, `cell_3/beginning_bn/...`,
`cell_3/path1_conv/...`, `cell_0/cell_output/reduction_1/path_conv/...`).

Facts (operations, hidden-state wiring, drop-path schedule) follow
tensorflow/models research/slim `nets/nasnet/nasnet_utils.py`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError

# Activations are clipped to [-CLIP_BY_VALUE_CAP, CLIP_BY_VALUE_CAP] with bounded activations.
CLIP_BY_VALUE_CAP = 6.0

_SEPARABLE = re.compile(r"^separable_(\d)x(\d)(?:_(\d+))?$")
_POOL = re.compile(r"^(avg|max)_pool_(\d)x(\d)$")


def calc_reduction_layers(num_cells: int, num_reduction_layers: int) -> list[int]:
    """Indices of the normal cells that get a reduction cell (or a stride) before them.

    The reductions split the cells evenly: 18 cells, 2 reductions → [6, 12].
    """
    return [int(float(i) / (num_reduction_layers + 1) * num_cells)
            for i in range(1, num_reduction_layers + 1)]


def global_avg_pool(x: tf.Tensor) -> tf.Tensor:
    """[N, H, W, C] → [N, C] by averaging over height and width."""
    return tf.reduce_mean(x, [1, 2])


def factorized_reduction(net: tf.Tensor, output_filters: int, stride: int) -> tf.Tensor:
    """Reduces `net` to `output_filters` channels (and by `stride`) without losing pixels.

    Stride 1: a 1x1 conv `path_conv` and `path_bn`. Stride s: two 1x1 convs on
    the pixels at even (`path1_conv`) and odd (`path2_conv`, zero-padded at the
    bottom/right) offsets, concatenated (the second path takes the odd extra
    filter), then `final_path_bn`.
    """
    if stride == 1:
        net = slim.conv2d(net, output_filters, 1, scope="path_conv")
        return slim.batch_norm(net, scope="path_bn")
    path1 = net[:, ::stride, ::stride, :]
    path1 = slim.conv2d(path1, output_filters // 2, 1, scope="path1_conv")
    shifted = tf.pad(net, [[0, 0], [0, 1], [0, 1], [0, 0]])
    path2 = shifted[:, 1::stride, 1::stride, :]
    path2 = slim.conv2d(path2, output_filters // 2 + output_filters % 2, 1, scope="path2_conv")
    final_path = tf.concat([path1, path2], axis=3)
    return slim.batch_norm(final_path, scope="final_path_bn")


@slim.add_arg_scope
def drop_path(net: tf.Tensor, keep_prob: Any, is_training: bool = True) -> tf.Tensor:
    """Zeroes a whole example's path with probability 1 - keep_prob (training only).

    Kept paths are scaled by 1/keep_prob so the expectation is unchanged.
    """
    if not is_training:
        return net
    noise_shape = tf.stack([tf.shape(net)[0], 1, 1, 1])
    random_tensor = keep_prob + tf.random.uniform(noise_shape, dtype=tf.float32)
    binary_tensor = tf.cast(tf.floor(random_tensor), net.dtype)
    keep_prob_inv = tf.cast(1.0 / keep_prob, net.dtype)
    return net * keep_prob_inv * binary_tensor


def scheduled_keep_prob(drop_path_keep_prob: float, cell_num: int, total_num_cells: int,
                        current_step: Any, total_training_steps: int) -> Any:
    """The drop-path keep probability of one cell at one training step.

    As the original (its version 'v3'): the drop rate grows linearly with the
    cell's depth, `(cell_num + 1) / total_num_cells`, then with training
    progress, `min(1, current_step / total_training_steps)`.

    Args:
      drop_path_keep_prob: the keep probability of the deepest cell at the end
        of the burn-in.
      cell_num: the cell's index, counting stem and reduction cells.
      total_num_cells: the number of cells the depth ratio divides by.
      current_step: the training step (int, tensor or variable, e.g.
        `optimizer.iterations`); None takes the burn-in as done (ratio 1).
      total_training_steps: the steps over which the drop rate ramps up.

    Returns:
      A Python float (current_step None) or a float32 scalar tensor.
    """
    layer_ratio = (cell_num + 1) / float(total_num_cells)
    keep_prob = 1.0 - layer_ratio * (1.0 - drop_path_keep_prob)
    if current_step is None:
        return keep_prob
    step = tf.cast(current_step, tf.float32)
    current_ratio = tf.minimum(1.0, step / float(total_training_steps))
    return 1.0 - current_ratio * (1.0 - keep_prob)


@dataclasses.dataclass(frozen=True)
class Operation:
    """A parsed operation string: kind `separable`, `avg_pool`, `max_pool` or `none`."""
    kind: str
    kernel_size: int = 1
    num_layers: int = 1


def parse_operation(operation: str) -> Operation:
    """`separable_5x5_2` → Operation('separable', 5, 2); `avg_pool_3x3`; `none`.

    Raises:
      SlimError: an operation string of another form, or a rectangular kernel.
    """
    if operation == "none":
        return Operation("none")
    match = _SEPARABLE.match(operation)
    if match:
        height, width, layers = match.groups()
        if height != width:
            raise SlimError(f"cell operation {operation!r}: rectangular filters are not "
                            f"supported; use a square kernel such as separable_3x3_2.")
        return Operation("separable", int(height), int(layers or 1))
    match = _POOL.match(operation)
    if match:
        kind, height, width = match.groups()
        if height != width:
            raise SlimError(f"cell operation {operation!r}: rectangular pooling is not "
                            f"supported; use a square window such as avg_pool_3x3.")
        return Operation(f"{kind}_pool", int(height))
    raise SlimError(f"unknown cell operation {operation!r}; use separable_KxK_N, "
                    f"avg_pool_KxK, max_pool_KxK or none.")


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """The searched structure of a cell.

    Attributes:
      operations: 10 operation strings, a left and a right one per combination.
      hiddenstate_indices: 10 indices into the hidden states (0: this cell's
        input after the 1x1, 1: the previous cell's output, 2+: combinations).
      used_hiddenstates: 7 flags; hidden states flagged 0 are concatenated
        into the cell's output.
    """
    operations: tuple[str, ...]
    hiddenstate_indices: tuple[int, ...]
    used_hiddenstates: tuple[int, ...]

    def __post_init__(self):
        for op in self.operations:
            parse_operation(op)
        num_combinations = len(self.operations) // 2
        if len(self.operations) % 2 or len(self.hiddenstate_indices) != len(self.operations):
            raise SlimError(f"CellSpec: expected one hidden-state index per operation and an even "
                            f"number of operations; got {len(self.operations)} operations and "
                            f"{len(self.hiddenstate_indices)} indices.")
        if len(self.used_hiddenstates) != num_combinations + 2:
            raise SlimError(f"CellSpec: expected {num_combinations + 2} used_hiddenstates flags "
                            f"(2 inputs + {num_combinations} combinations); got "
                            f"{len(self.used_hiddenstates)}.")


NASNET_A_NORMAL = CellSpec(
    operations=("separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2",
                "avg_pool_3x3", "none", "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2",
                "none"),
    hiddenstate_indices=(0, 1, 1, 1, 0, 1, 1, 1, 0, 0),
    used_hiddenstates=(1, 0, 0, 0, 0, 0, 0))

NASNET_A_REDUCTION = CellSpec(
    operations=("separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2",
                "avg_pool_3x3", "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2",
                "max_pool_3x3"),
    hiddenstate_indices=(0, 1, 0, 1, 0, 1, 3, 2, 2, 0),
    used_hiddenstates=(1, 1, 1, 0, 0, 0, 0))

PNASNET_5 = CellSpec(
    operations=("separable_5x5_2", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3",
                "separable_5x5_2", "separable_3x3_2", "separable_3x3_2", "max_pool_3x3",
                "separable_3x3_2", "none"),
    hiddenstate_indices=(1, 1, 0, 0, 0, 0, 4, 0, 1, 0),
    used_hiddenstates=(1, 1, 0, 0, 0, 0, 0))


def _channels(x: tf.Tensor) -> int:
    return int(x.shape[3])


def _width(x: tf.Tensor) -> int:
    return int(x.shape[2])


class Cell:
    """A NASNet-style cell: `cell(net, scope=..., filter_scaling=..., stride=..., ...)`.

    Args:
      spec: the cell structure.
      num_conv_filters: filters of every convolution at filter_scaling 1.
      drop_path_keep_prob: drop-path keep probability (1.0 disables drop-path).
      total_num_cells: cells the drop-path depth ratio divides by.
      total_training_steps: drop-path burn-in steps.
      use_bounded_activation: ReLU6 and clipping to [-6, 6] (for quantization).
    """

    def __init__(self, spec: CellSpec, num_conv_filters: int, drop_path_keep_prob: float,
                 total_num_cells: int, total_training_steps: int,
                 use_bounded_activation: bool = False):
        self.spec = spec
        self._num_conv_filters = num_conv_filters
        self._drop_path_keep_prob = drop_path_keep_prob
        self._total_num_cells = total_num_cells
        self._total_training_steps = total_training_steps
        self._bounded = use_bounded_activation
        self._activation: Callable = tf.nn.relu6 if use_bounded_activation else tf.nn.relu

    def __call__(self, net: tf.Tensor, scope: str, filter_scaling: float = 1.0, stride: int = 1,
                 prev_layer: tf.Tensor | None = None, cell_num: int = -1,
                 current_step: Any = None) -> tf.Tensor:
        """Runs the cell on `net` (and the previous cell's output `prev_layer`).

        Returns:
          The concatenation of the hidden states the cell does not consume.
        """
        filter_size = int(self._num_conv_filters * filter_scaling)
        step = dict(filter_size=filter_size, cell_num=cell_num, current_step=current_step)
        with slim.variable_scope(scope):
            states = self._cell_base(net, prev_layer, filter_size)
            ops, idx = self.spec.operations, self.spec.hiddenstate_indices
            for i in range(len(ops) // 2):
                left, right = 2 * i, 2 * i + 1
                with slim.variable_scope(f"comb_iter_{i}"):
                    with slim.variable_scope("left"):
                        h1 = self._apply_operation(states[idx[left]], ops[left], stride,
                                                   idx[left] < 2, **step)
                    with slim.variable_scope("right"):
                        h2 = self._apply_operation(states[idx[right]], ops[right], stride,
                                                   idx[right] < 2, **step)
                    with slim.variable_scope("combine"):
                        h = h1 + h2
                        if self._bounded:
                            h = tf.nn.relu6(h)
                states.append(h)
            with slim.variable_scope("cell_output"):
                return self._combine_unused_states(states)

    def _reduce_prev_layer(self, prev_layer: tf.Tensor | None, curr_layer: tf.Tensor,
                           filter_size: int) -> tf.Tensor:
        """Brings the previous cell's output to this cell's size and filters."""
        if prev_layer is None:
            return curr_layer
        if _width(curr_layer) != _width(prev_layer):
            prev_layer = self._activation(prev_layer)
            return factorized_reduction(prev_layer, filter_size, stride=2)
        if filter_size != _channels(prev_layer):
            prev_layer = self._activation(prev_layer)
            prev_layer = slim.conv2d(prev_layer, filter_size, 1, scope="prev_1x1")
            return slim.batch_norm(prev_layer, scope="prev_bn")
        return prev_layer

    def _cell_base(self, net: tf.Tensor, prev_layer: tf.Tensor | None,
                   filter_size: int) -> list[tf.Tensor]:
        """The two input hidden states: 1x1 conv of `net`, and the matched `prev_layer`."""
        prev_layer = self._reduce_prev_layer(prev_layer, net, filter_size)
        net = self._activation(net)
        net = slim.conv2d(net, filter_size, 1, scope="1x1")
        net = slim.batch_norm(net, scope="beginning_bn")
        return [net, prev_layer]

    def _apply_operation(self, net: tf.Tensor, operation: str, stride: int,
                         is_from_original_input: bool, filter_size: int, cell_num: int,
                         current_step: Any) -> tf.Tensor:
        """One operation of a combination; only the cell's inputs are strided."""
        if stride > 1 and not is_from_original_input:
            stride = 1
        op = parse_operation(operation)
        input_filters = _channels(net)
        if op.kind == "separable":
            net = self._stacked_separable_conv(net, stride, op, filter_size)
            if self._bounded:
                net = tf.clip_by_value(net, -CLIP_BY_VALUE_CAP, CLIP_BY_VALUE_CAP)
        elif op.kind == "none":
            if self._bounded:
                net = tf.nn.relu6(net)
            if stride > 1 or input_filters != filter_size:
                if not self._bounded:
                    net = tf.nn.relu(net)
                net = slim.conv2d(net, filter_size, 1, stride=stride, scope="1x1")
                net = slim.batch_norm(net, scope="bn_1")
                if self._bounded:
                    net = tf.clip_by_value(net, -CLIP_BY_VALUE_CAP, CLIP_BY_VALUE_CAP)
        else:
            if self._bounded:
                net = tf.nn.relu6(net)
            pool = slim.avg_pool2d if op.kind == "avg_pool" else slim.max_pool2d
            net = pool(net, op.kernel_size, stride=stride, padding="SAME")
            if input_filters != filter_size:
                net = slim.conv2d(net, filter_size, 1, stride=1, scope="1x1")
                net = slim.batch_norm(net, scope="bn_1")
            if self._bounded:
                net = tf.clip_by_value(net, -CLIP_BY_VALUE_CAP, CLIP_BY_VALUE_CAP)
        if op.kind != "none":
            net = self._apply_drop_path(net, cell_num, current_step)
        return net

    def _stacked_separable_conv(self, net: tf.Tensor, stride: int, op: Operation,
                                filter_size: int) -> tf.Tensor:
        """`num_layers` x (activation, separable conv, batch norm); the first one strides."""
        k = op.kernel_size
        for layer in range(1, op.num_layers + 1):
            net = self._activation(net)
            net = slim.separable_conv2d(net, filter_size, k, depth_multiplier=1, stride=stride,
                                        scope=f"separable_{k}x{k}_{layer}")
            net = slim.batch_norm(net, scope=f"bn_sep_{k}x{k}_{layer}")
            stride = 1
        return net

    def _apply_drop_path(self, net: tf.Tensor, cell_num: int, current_step: Any) -> tf.Tensor:
        if self._drop_path_keep_prob >= 1.0:
            return net
        if cell_num < 0:
            raise SlimError(f"drop-path needs the cell's index; got cell_num={cell_num}. Pass "
                            f"cell_num=<index> to the cell, or drop_path_keep_prob=1.0.")
        keep_prob = scheduled_keep_prob(self._drop_path_keep_prob, cell_num,
                                        self._total_num_cells, current_step,
                                        self._total_training_steps)
        return drop_path(net, keep_prob)

    def _combine_unused_states(self, states: list[tf.Tensor]) -> tf.Tensor:
        """Concatenates the unconsumed states, reduced to the last state's size first."""
        final_width, final_filters = _width(states[-1]), _channels(states[-1])
        for idx, used in enumerate(self.spec.used_hiddenstates):
            width, filters = _width(states[idx]), _channels(states[idx])
            if not used and (width != final_width or filters != final_filters):
                stride = 2 if width != final_width else 1
                with slim.variable_scope(f"reduction_{idx}"):
                    states[idx] = factorized_reduction(states[idx], final_filters, stride)
        unused = [h for h, used in zip(states, self.spec.used_hiddenstates) if not used]
        return tf.concat(unused, axis=3)

