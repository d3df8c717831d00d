"""`slim-predict`: label_image in Python, for users without a C++ compiler.

Classifies image files with a frozen graph (`--graph`) or with a net and a
checkpoint (`--model_name` + `--checkpoint_path`), and prints the top results
as label_image does: `label (index): score`.

Preprocessing: by default the net's own eval preprocessing (inception,
vgg, cifarnet or lenet: exactly what slim-eval applies). With `--input_mean`
and `--input_std`, label_image's instead: bilinear resize, then
`(pixel - mean) / std`, op for op as the C++ binary does it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

import numpy as np
import tensorflow as tf

from slimcli import precision as precision_lib
from slimcli import slim
from slimcli.config import option
from slimcli.errors import SlimError
from slimcli.freeze import check_node_names, graph_runner, load_graph_def, output_candidates
from slimcli.nets import NETS_REGISTRY, NetSpec, nets_factory
from slimcli.precision import PRECISION_HELP
from slimcli.preprocessing import get_preprocessing
from slimcli.serving import decode_image_file, format_top_k, label_image_preprocess, read_labels

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PredictConfig:
    """The settings of `slim-predict`: label_image's flags, plus the net/checkpoint route.

    Field names are the flag names; each field's help is its flag's `--help` text. With
    `graph`, `model_name` picks the output node and the preprocessing; with
    `checkpoint_path`, the net is run directly. `precision` applies to a net run from a
    checkpoint; a frozen graph runs in float32, the dtype it was exported in.
    """
    image: str = option("", "Image file(s) (JPEG, PNG, GIF, BMP), comma-separated.")
    graph: str = option("", "Frozen GraphDef (.pb).")
    labels: str = option("", "Labels file: `id:name` lines or one label per line.")
    model_name: str = option("", "The net (picks the preprocessing and output node).")
    checkpoint_path: str = option("", "Run --model_name from this checkpoint instead of a graph.")
    input_layer: str = option("input", "Input node of --graph.")
    output_layer: str = option("", "Output node of --graph; default: the net's prediction op.")
    preprocessing_name: str = option("", "Preprocessing family; default: the net's.")
    image_size: int | None = option(None, "Input size; default: the graph's or the net's.")
    num_classes: int | None = option(None, "Classes of the checkpoint; default: read from it.")
    use_grayscale: bool = option(False, "1-channel input.")
    input_mean: float | None = option(None, "label_image normalization: (pixel - mean) / std.")
    input_std: float | None = option(None, "label_image normalization: (pixel - mean) / std.")
    top_k: int = option(5, "How many results to print.", lower_bound=1)
    precision: str = dataclasses.field(default="float32", metadata={"help": PRECISION_HELP})

    def validate(self) -> None:
        """Raises SlimError naming a bad value and the fix."""
        if self.top_k < 1:
            raise SlimError(f"--top_k must be >= 1. Received: --top_k={self.top_k}")
        precision_lib.validate(self.precision)


def _spec_for_output(output_layer: str) -> NetSpec | None:
    """A net whose prediction op is `output_layer` (variants share preprocessing)."""
    specs = [spec for _, spec in NETS_REGISTRY.items() if spec.predictions_op == output_layer]
    if len({s.preprocessing for s in specs}) == 1:
        return specs[0]
    return None


def _default_output(graph_def, config: PredictConfig) -> str:
    if config.output_layer:
        return config.output_layer
    names = {n.name for n in graph_def.node}
    if config.model_name:
        spec = nets_factory.get_net_spec(config.model_name)
        if spec.predictions_op:
            return spec.predictions_op
        squeezed = [f"{scope}/squeezed" for scope in spec.logits_scopes]
        if any(name in names for name in squeezed):  # nets without softmax: the logits
            return next(name for name in squeezed if name in names)
    known = [s.predictions_op for _, s in NETS_REGISTRY.items() if s.predictions_op in names]
    if known:
        return known[0]
    raise SlimError(f"pass --output_layer: the graph has no known prediction op. Candidates: "
                    f"{', '.join(output_candidates(graph_def))}.")


def _input_shape(graph_def, input_layer: str) -> list:
    check_node_names(graph_def, [input_layer], "--input_layer")
    node = next(n for n in graph_def.node if n.name == input_layer)
    dims = [d.size for d in node.attr["shape"].shape.dim] if "shape" in node.attr else []
    return dims if len(dims) == 4 else [-1, -1, -1, -1]


def make_preprocess(config: PredictConfig, spec: NetSpec | None, size: int,
                    channels: int) -> Callable[[str], tf.Tensor]:
    """image path → a [1, size, size, channels] float batch, as configured."""
    if (config.input_mean is None) != (config.input_std is None):
        raise SlimError("pass both --input_mean and --input_std (label_image's normalization), "
                        "or neither (the net's own eval preprocessing).")
    if config.input_mean is not None:
        if config.input_std == 0:
            raise SlimError("--input_std=0 would divide by zero; pass e.g. --input_std=255.")
        return lambda path: label_image_preprocess(decode_image_file(path, channels), size, size,
                                                   config.input_mean, config.input_std)
    name = config.preprocessing_name or (spec.preprocessing if spec else "")
    if not name:
        raise SlimError("cannot tell which preprocessing this graph needs: pass --model_name, "
                        "--preprocessing_name, or --input_mean and --input_std.")
    fn = get_preprocessing(name, is_training=False, use_grayscale=channels == 1)
    return lambda path: fn(decode_image_file(path, 3), size, size)[tf.newaxis]


def graph_classifier(config: PredictConfig) -> tuple[Callable, Callable]:
    """(preprocess, classify) for a frozen graph."""
    graph_def = load_graph_def(config.graph, binary=True)
    output = _default_output(graph_def, config)
    check_node_names(graph_def, [output], "--output_layer")
    shape = _input_shape(graph_def, config.input_layer)
    spec = nets_factory.get_net_spec(config.model_name) if config.model_name else \
        _spec_for_output(output)
    size = config.image_size or (shape[1] if shape[1] > 0 else None) or \
        (spec.default_image_size if spec else None)
    if not size:
        raise SlimError("the graph's input has no fixed size; pass --image_size.")
    channels = shape[3] if shape[3] > 0 else (1 if config.use_grayscale else 3)
    run = graph_runner(graph_def, config.input_layer, output)
    if spec is not None and spec.predictions_op is None and not config.output_layer:
        return make_preprocess(config, spec, size, channels), lambda x: tf.nn.softmax(run(x))
    return make_preprocess(config, spec, size, channels), run


def _num_classes_from_checkpoint(spec: NetSpec, path: str) -> int:
    shapes = dict(slim.list_variables(path))
    for scope in spec.logits_scopes:
        for leaf in ("biases", "weights"):
            if f"{scope}/{leaf}" in shapes:
                return shapes[f"{scope}/{leaf}"][-1]
    raise SlimError(f"cannot read the number of classes of {spec.name} from {path} (no "
                    f"{spec.logits_scopes[0]}/biases); pass --num_classes.")


def checkpoint_classifier(config: PredictConfig) -> tuple[Callable, Callable]:
    """(preprocess, classify) for a net restored from a checkpoint."""
    spec = nets_factory.get_net_spec(config.model_name)
    path = slim.resolve_checkpoint_path(config.checkpoint_path)
    classes = config.num_classes or _num_classes_from_checkpoint(spec, path)
    net = nets_factory.get_network_fn(config.model_name, classes, is_training=False)
    size = config.image_size or spec.default_image_size
    channels = 1 if config.use_grayscale else 3
    dtype = precision_lib.compute_dtype(precision_lib.resolve(config.precision))
    net.build([1, size, size, channels], dtype=dtype)
    slim.assign_from_checkpoint(path, net.variables_dict())

    def classify(images: tf.Tensor) -> tf.Tensor:
        logits, end_points = net(tf.cast(images, dtype), is_training=False)
        probabilities = end_points.get(spec.predictions_key)
        scores = tf.nn.softmax(tf.cast(logits, tf.float32)) if probabilities is None else \
            probabilities
        return tf.cast(scores, tf.float32)
    return make_preprocess(config, spec, size, channels), classify


def predict(config: PredictConfig) -> list[tuple[str, np.ndarray]]:
    """Classifies each image of `config.image`; returns `[(path, probabilities), ...]`.

    Raises:
      SlimError: missing inputs, unknown nodes or nets (the message says which).
    """
    config.validate()
    images = [p.strip() for p in config.image.split(",") if p.strip()]
    if not images:
        raise SlimError("--image is required: one image file or a comma-separated list.")
    if config.graph:
        if config.precision in ("bfloat16", "float16"):
            raise SlimError(f"--precision={config.precision} applies to --model_name with "
                            f"--checkpoint_path; a frozen --graph runs in float32 (the dtype "
                            f"it was exported in). Drop --precision or pass a checkpoint.")
        preprocess, classify = graph_classifier(config)
    elif config.model_name and config.checkpoint_path:
        preprocess, classify = checkpoint_classifier(config)
    else:
        raise SlimError("pass --graph=FROZEN.pb, or --model_name and --checkpoint_path.")
    return [(path, np.asarray(classify(preprocess(path)))) for path in images]


def format_results(results: list[tuple[str, np.ndarray]], labels_path: str,
                   top_k: int) -> str:
    """label_image's lines per image (a `path:` header when there are several images)."""
    labels = read_labels(labels_path) if labels_path else None
    blocks = []
    for path, scores in results:
        lines = format_top_k(scores, labels, top_k)
        blocks.append("\n".join(([f"{path}:"] if len(results) > 1 else []) + lines))
    return "\n".join(blocks)
