"""Every net of the registry exports (names as the original's) and freezes.

Freezing needs a checkpoint with every value: for VGG, AlexNet and OverFeat
(50-145M parameters) that is 0.2-0.6 GB, removed as soon as the graph is frozen.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from export_helpers import run_frozen
from nets_helpers import reference
from slimcli import slim
from slimcli.export import ExportConfig, build_inference_graph
from slimcli.freeze import freeze_graph_def
from slimcli.nets import list_nets

def _checkpoint_from_graph(graph_def, prefix: str) -> str:
    """A checkpoint with a small deterministic value for every variable node of the graph.

    Weights are 1 / fan-in, so activations keep their scale through deep nets
    (a constant 0.01 overflows float32 in Inception v4 and Inception-ResNet-v2).
    """
    values = {}
    for node in graph_def.node:
        if node.op == "VariableV2":
            shape = [d.size for d in node.attr["shape"].shape.dim]
            leaf = node.name.rsplit("/", 1)[-1]
            if leaf in ("moving_variance", "gamma"):
                value = 1.0
            elif len(shape) < 2:
                value = 0.01
            else:
                fan_in = np.prod(shape[:2] if leaf == "depthwise_weights" else shape[:-1])
                value = 1.0 / fan_in
            values[node.name] = np.full(shape, value, np.float32)
    return slim.save_checkpoint(values, prefix)


@pytest.mark.parametrize("name", list_nets())
def test_export_and_freeze(name, tmp_path):
    ref = reference(name)
    exported = build_inference_graph(ExportConfig(model_name=name, batch_size=1,
                                                  num_classes=ref["num_classes"]))
    nodes = {n.name: n for n in exported.graph_def.node}
    assert nodes["input"].op == "Placeholder"
    assert [d.size for d in nodes["input"].attr["shape"].shape.dim] == \
        [1, ref["image_size"], ref["image_size"], 3]
    expected_output = (ref["predictions_tensor"] or ref["logits_tensor"]).split(":")[0]
    assert exported.output_name == expected_output
    variables = {n for n, v in nodes.items() if v.op == "VariableV2"}
    assert variables == {n for n, _, _ in ref["variables"]}
    ckpt = _checkpoint_from_graph(exported.graph_def, str(tmp_path / "model.ckpt-1"))
    frozen = freeze_graph_def(exported.graph_def, ckpt, [exported.output_name])
    for path in glob.glob(f"{ckpt}.*"):
        os.remove(path)
    assert not [n.name for n in frozen.node if n.op == "VariableV2"]
    size = ref["image_size"]
    out = run_frozen(frozen, exported.output_name, np.zeros([1, size, size, 3], np.float32))
    assert out.reshape(1, -1).shape == (1, ref["num_classes"])
    assert np.all(np.isfinite(out))
