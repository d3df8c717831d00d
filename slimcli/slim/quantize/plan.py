"""Where to fake-quantize: the original's matching rules, applied to a traced net.

TF1's `contrib.quantize` (r1.15 `quantize.py`) rewrote a finished graph; what
it quantized after a layer depended on what followed it. Here a PLAN trace runs
the net in float once per call signature, recording its weight layers and the
ops of the net's own code (additions, activations, ...) in creation order;
`analyze` then decides, with the original's rules and names:

1. a layer without activation whose output feeds an Add followed by an
   activation (ResNet v1's `relu(shortcut + residual)`) is a bypass: its
   output is quantized at `<layer>/conv_quant`, the activation's at
   `<parent of layer>/act_quant`, and the Add is not (the activation follows);
2. an Add fed by a layer's activation (MobileNet v2's `project + input`) is
   quantized at `<scope of the Add>/post_activation_bypass_quant` unless a
   Relu or Relu6 follows it;
3. every other layer's output is quantized at `<layer>/act_quant` (after its
   activation; the logits layer's bias add);
4. any other Add, AddV2 or Mul of the net with a quantized input (through
   Reshape, Identity, MaxPool, ...) is quantized at
   `<op name>/activation_<type>_quant`, unless its only consumer is a Relu.

It also checks what an integer-only model needs and the original's rewrite did
not: every layer's input is quantized, or comes from quantized tensors through
ops that keep a range (pooling, concatenation, padding, reshapes); otherwise
the net cannot be quantized and the error names the op in the way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim.quantize.fake_quant import QuantSpot
from slimcli.slim.quantize.layer import LayerRecord

__all__ = ["Recorder", "Plan", "analyze"]

_ADDS = {"Add", "AddV2"}
_ACTIVATIONS = {"Relu", "Relu6", "Identity"}
_RELUS = {"Relu", "Relu6"}
_VALID_SRC = {"Add", "AddV2", "Mul"}
_PASS_THROUGH = {"Reshape", "Identity", "BatchToSpaceND", "SpaceToBatchND", "MaxPool", "Max"}
# Ops whose output an integer model can take the range of from their inputs.
_KEEP_RANGE = _PASS_THROUGH | {"Squeeze", "ExpandDims", "AvgPool", "Mean", "Pad", "PadV2",
                               "MirrorPad", "ConcatV2", "StridedSlice", "Slice", "Transpose"}


@dataclasses.dataclass
class Recorder:
    """What a PLAN trace collects.

    Attributes:
      layers: the weight layers (and depthwise halves), in call order.
      net_ops: `{ordinal: operation}` of the ops made outside layers.
      passthrough: `{output key: input}` of layers that pass their input on
        (dropout).
      images: the net's input tensor.
    """
    layers: list[LayerRecord] = dataclasses.field(default_factory=list)
    net_ops: dict[int, Any] = dataclasses.field(default_factory=dict)
    passthrough: dict[Any, tf.Tensor] = dataclasses.field(default_factory=dict)
    images: tf.Tensor | None = None


@dataclasses.dataclass
class Plan:
    """Where one call signature is fake-quantized.

    Attributes:
      layer_outputs: `{layer key: spot}` of every layer's output.
      weights: every weights spot.
      net_ops: `{ordinal: (op type, spot)}` of the net's own ops to quantize.
    """
    layer_outputs: dict[str, QuantSpot] = dataclasses.field(default_factory=dict)
    weights: list[QuantSpot] = dataclasses.field(default_factory=list)
    net_ops: dict[int, tuple[str, QuantSpot]] = dataclasses.field(default_factory=dict)

    def spots(self) -> list[QuantSpot]:
        """Every spot, weights first."""
        return [*self.weights, *self.layer_outputs.values(),
                *(spot for _, spot in self.net_ops.values())]


def _key(t: tf.Tensor) -> tuple[int, str]:
    """A graph tensor's identity (TensorFlow may hand out several Python objects for one)."""
    return id(t.graph), t.name


def _parent(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _join(context: str, name: str) -> str:
    return f"{context}/{name}" if context else name


class _Analysis:
    """The rules of the module docstring over one PLAN trace."""

    def __init__(self, recorder: Recorder, graph: tf.Graph):
        self.rec = recorder
        self.plan = Plan()
        self.ordinal = {op.name: i for i, op in recorder.net_ops.items() if op is not None}
        self.consumers: dict[Any, list] = {}
        for op in graph.get_operations():
            for t in op.inputs:
                self.consumers.setdefault(_key(t), []).append(op)
        self.by_output = {_key(r.output): r for r in recorder.layers if not r.part}
        self.quantized = {_key(r.output) for r in recorder.layers}  # every layer output is
        self.activations = {_key(r.output) for r in recorder.layers
                            if r.activated and not r.part}
        self.done_ops: set = set()

    def net_adds(self):
        for i, op in sorted(self.rec.net_ops.items()):
            if op is not None and op.type in _ADDS:
                yield i, op

    def users(self, op) -> list:
        return self.consumers.get(_key(op.outputs[0]), []) if op.outputs else []

    def quantize_op(self, op, spot: QuantSpot) -> None:
        self.plan.net_ops[self.ordinal[op.name]] = (op.type, spot)
        self.quantized.add(_key(op.outputs[0]))
        self.done_ops.add(op.name)

    def bypasses(self) -> None:
        for _, add in self.net_adds():
            acts = [c for c in self.users(add) if c.type in _ACTIVATIONS and c.name in self.ordinal]
            if not acts:
                continue
            for t in add.inputs:
                layer = self.by_output.get(_key(t))
                if layer is None or layer.activated or layer.key in self.plan.layer_outputs:
                    continue
                self.plan.layer_outputs[layer.key] = QuantSpot(f"{layer.context}/conv_quant")
                if acts[0].name not in self.done_ops:
                    spot = QuantSpot(_join(_parent(layer.context), "act_quant"), init_min=0.0)
                    self.quantize_op(acts[0], spot)
                    self.activations.add(_key(acts[0].outputs[0]))

    def post_activation_bypasses(self) -> None:
        for _, add in self.net_adds():
            if add.name in self.done_ops or not any(_key(t) in self.activations for t in add.inputs):
                continue
            if any(c.type in _RELUS for c in self.users(add)):
                continue
            self.quantize_op(add, QuantSpot(_join(_parent(add.name),
                                                  "post_activation_bypass_quant")))

    def layer_spots(self) -> None:
        for r in self.rec.layers:
            self.plan.weights.append(QuantSpot(f"{r.context}/weights_quant", moving=False))
            if r.key not in self.plan.layer_outputs:
                self.plan.layer_outputs[r.key] = QuantSpot(f"{r.context}/act_quant", init_min=0.0)

    def activation_layers(self) -> None:
        for _, op in sorted(self.rec.net_ops.items()):
            if op is not None and self.quantizable(op, 0):
                self.quantize_op(op, QuantSpot(f"{op.name}/activation_{op.type}_quant"))

    def _through(self, t: tf.Tensor) -> tf.Tensor:
        while _key(t) not in self.quantized:
            if _key(t) in self.rec.passthrough:
                t = self.rec.passthrough[_key(t)]
            elif t.op.type in _PASS_THROUGH:
                t = t.op.inputs[0]
            else:
                break
        return t

    def quantizable(self, op, depth: int) -> bool:
        """The original's `_CheckIfQuantizableOp`."""
        if op.name in self.done_ops or op.type not in _VALID_SRC or depth > 50:
            return False
        users = self.users(op)
        if len(op.outputs) == 1 and len(users) == 1 and users[0].type in _RELUS:
            return False
        for t in op.inputs:
            t = self._through(t)
            if _key(t) in self.quantized:
                return True
            if t.op.type in _VALID_SRC and any(self.quantizable(i.op, depth + 1)
                                               for i in t.op.inputs):
                return True
        return False

    def blocking_op(self, t: tf.Tensor, input_ok: bool):
        """The op that leaves `t` without a range, or None when `t` has one."""
        seen = 0
        pending = [t]
        while pending and seen < 10000:
            t, seen = pending.pop(), seen + 1
            if _key(t) in self.quantized or (input_ok and _key(t) == _key(self.rec.images)):
                continue
            if _key(t) in self.rec.passthrough:
                pending.append(self.rec.passthrough[_key(t)])
            elif t.op.type in _KEEP_RANGE:
                pending.extend(t.op.inputs[:-1] if t.op.type == "ConcatV2" else t.op.inputs[:1])
            else:
                return t.op
        return None


def analyze(recorder: Recorder, graph: tf.Graph, net_name: str, input_quantized: bool) -> Plan:
    """The plan of one PLAN trace (see the module docstring).

    Raises:
      SlimError: a layer's input has no range an integer model could use
        (names the net, the layer and the op in the way).
    """
    analysis = _Analysis(recorder, graph)
    analysis.bypasses()
    analysis.post_activation_bypasses()
    analysis.layer_spots()
    analysis.activation_layers()
    for record in recorder.layers:
        op = analysis.blocking_op(record.inputs, input_quantized)
        if op is None:
            continue
        what = ("the net's input, which has no fixed range (its preprocessing has none)"
                if op.type == "Placeholder" else f"{op.name} ({op.type}), which the original's "
                f"rewrite leaves in float")
        raise SlimError(f"{net_name} cannot be quantized: the input of layer {record.key} comes "
                        f"from {what}; an integer-only model needs every layer input "
                        f"quantized. Train it without --quantize_delay.")
    return analysis.plan
