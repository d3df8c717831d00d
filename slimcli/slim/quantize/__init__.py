"""Quantization-aware training for slim nets: TF1's `contrib.quantize`, in TensorFlow 2.

    from slimcli.slim import quantize
    net = slim.Model(my_net)
    quantizer = quantize.Quantizer(quantize.QuantizeConfig(quant_delay=1000), "my_net")

The nets factory's `get_network_fn(..., quantize=QuantizeConfig(...))` wires a
`Quantizer` into a net's calls, so no net needs an edit: batch norms fold into
the weights of the layer before them, weights and activations are
fake-quantized with the original's learnt ranges and variable names
(`<layer>/weights_quant/min`, `<layer>/act_quant/max`, ...), and the net's own
residual additions are quantized where the original's rewrite quantized them.
Modules: `state` (settings and the call in progress), `fake_quant` (ranges),
`fold` (batch-norm folding), `layer` (the quantized layers), `plan` (the
original's matching rules) and `model` (the calls).
"""

from slimcli.slim.quantize.fake_quant import RANGES, QuantSpot
from slimcli.slim.quantize.model import QuantizedModel, Quantizer
from slimcli.slim.quantize.state import QuantizeConfig

__all__ = ["QuantizeConfig", "QuantizedModel", "Quantizer", "QuantSpot", "RANGES"]
