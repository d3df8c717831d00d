"""`slim-export`: the inference graph of a net as a TF1 GraphDef (and SavedModel/TFLite).

The GraphDef is built with `tf.compat.v1` graph building because the
artifact is a TF1 artifact: a float32 placeholder `input`
[batch, size, size, channels], the net in inference mode, and its prediction
op under the original's name (`InceptionV3/Predictions/Reshape_1`). Variable
nodes are named exactly as the checkpoint keys, so slim-freeze, TensorFlow's
own freeze_graph and label_image work on it unchanged.

    exported = export(ExportConfig(model_name="inception_v3", output_file="/tmp/g.pb"))
    print(describe(exported))
"""

from __future__ import annotations

import dataclasses
import logging

import tensorflow as tf

from slimcli import quantization
from slimcli.config import option
from slimcli.datasets import DATASETS, get_dataset
from slimcli.errors import SlimError
from slimcli.freeze import freeze_graph_def, write_graph_def
from slimcli.nets import nets_factory
from slimcli.serving import ClientPreprocessing, client_preprocessing
from slimcli.slim.checkpoints import resolve_checkpoint_path

log = logging.getLogger(__name__)

INPUT_NAME = "input"
TFLITE_QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
TFLITE_IO_TYPES = ("int8", "uint8")

@dataclasses.dataclass
class ExportConfig:
    """The settings of `slim-export`: the original export_inference_graph flags, then more.

    Field names are the flag names; each field's help is its flag's `--help` text.
    """
    model_name: str = option("inception_v3", "The name of the net to export.")
    is_training: bool = option(False, "Export the training-mode graph.")
    image_size: int | None = option(None, "Input height and width; default: the net's size.")
    batch_size: int | None = option(None, "Batch size of the input; default: dynamic.")
    dataset_name: str = option("imagenet", "The dataset, for its number of classes.")
    labels_offset: int = option(0, "Classes dropped from the dataset's count (1 for 1000-class "
                                   "checkpoints on ImageNet's 1001).")
    output_file: str = option("", "Where to write the GraphDef.")
    dataset_dir: str = option("", "The dataset's TFRecords (int8 TFLite calibration).")
    write_text_graphdef: bool = option(False, "Write the GraphDef as text (pbtxt).")
    use_grayscale: bool = option(False, "A 1-channel (grayscale) input.")
    num_classes: int | None = option(None, "Overrides the dataset's number of classes.")
    checkpoint_path: str = option("", "Freeze with this checkpoint (prefix or directory): "
                                      "--output_file gets the frozen graph.")
    saved_model_dir: str = option("", "Also write a SavedModel (needs --checkpoint_path).")
    tflite_file: str = option("", "Also write a TFLite model (needs --checkpoint_path).")
    tflite_quantize: str = option("none", "TFLite quantization; int8 is calibrated on "
                                          "--dataset_dir.", choices=TFLITE_QUANTIZE_MODES)
    calibration_steps: int = option(20, "Images from --dataset_dir for int8 calibration.")
    quantize: bool = option(False, "Export the quantized net: FakeQuant nodes with the "
                                   "checkpoint's learnt ranges (a --quantize_delay "
                                   "checkpoint), as the original's --quantize; with "
                                   "--tflite_file, a fully integer model.")
    tflite_io_type: str = option("int8", "With --quantize and --tflite_file: the integer "
                                         "model's input and output type.",
                                 choices=TFLITE_IO_TYPES)
    preprocessing_name: str | None = option(None, "The preprocessing whose input range "
                                                  "--quantize uses; default: the net's.")

    def validate(self) -> None:
        """Raises SlimError naming a bad value and the fix."""
        if self.tflite_quantize not in TFLITE_QUANTIZE_MODES:
            raise SlimError(f"--tflite_quantize={self.tflite_quantize!r} is not one of "
                            f"{', '.join(TFLITE_QUANTIZE_MODES)}.")
        if self.calibration_steps < 1:
            raise SlimError(f"--calibration_steps must be >= 1. Received: "
                            f"--calibration_steps={self.calibration_steps}")
        if not self.output_file and not (self.saved_model_dir or self.tflite_file):
            raise SlimError("--output_file is required: where to write the inference GraphDef.")
        if self.quantize and self.tflite_quantize != "none":
            raise SlimError(f"--quantize exports the ranges learnt by quantization-aware "
                            f"training; --tflite_quantize={self.tflite_quantize} is post-training "
                            f"quantization of a float net: pass one of the two.")
        if self.tflite_io_type not in TFLITE_IO_TYPES:
            raise SlimError(f"--tflite_io_type={self.tflite_io_type!r} is not one of "
                            f"{', '.join(TFLITE_IO_TYPES)}.")

    @property
    def channels(self) -> int:
        return 1 if self.use_grayscale else 3


@dataclasses.dataclass
class ExportedGraph:
    """An inference graph and the contract a client needs to use it."""
    graph_def: tf.compat.v1.GraphDef
    model_name: str
    input_name: str
    output_name: str
    logits_name: str
    input_shape: list
    num_classes: int
    variable_names: list[str]
    preprocessing: ClientPreprocessing
    frozen: bool = False

    @property
    def image_size(self) -> int:
        return self.input_shape[1]


def dataset_num_classes(name: str, dataset_dir: str = "") -> int:
    """The number of classes of dataset `name` (its spec, or its converted data for `folder`).

    Raises:
      SlimError: unknown dataset (known ones listed), or one whose classes only
        its converted data knows and no `dataset_dir` was given.
    """
    spec = DATASETS.get(name)
    if spec.num_classes:
        return spec.num_classes
    if not dataset_dir:
        raise SlimError(f"--dataset_name={name} takes its classes from the converted data: pass "
                        f"--dataset_dir (or --num_classes=N).")
    return get_dataset(name, "train", dataset_dir).num_classes


def resolve_num_classes(config: ExportConfig) -> int:
    """The logits size: `--num_classes`, else the dataset's classes minus `--labels_offset`.

    Raises:
      SlimError: unknown dataset, or a count below 1.
    """
    if config.num_classes is not None:
        classes = config.num_classes
    else:
        classes = dataset_num_classes(config.dataset_name, config.dataset_dir) - \
            config.labels_offset
    if classes < 1:
        raise SlimError(f"the net would have {classes} classes (--num_classes/--dataset_name "
                        f"minus --labels_offset={config.labels_offset}); pass --num_classes>=1.")
    return classes


def _check_config(config: ExportConfig) -> None:
    if config.image_size is not None and config.image_size < 1:
        raise SlimError(f"--image_size={config.image_size} must be positive (or left out for "
                        f"the net's default size).")
    if config.batch_size is not None and config.batch_size < 1:
        raise SlimError(f"--batch_size={config.batch_size} must be positive (or left out for a "
                        f"dynamic batch).")
    if config.tflite_quantize not in TFLITE_QUANTIZE_MODES:
        raise SlimError(f"--tflite_quantize={config.tflite_quantize!r} is not one of "
                        f"{', '.join(TFLITE_QUANTIZE_MODES)}.")
    if config.tflite_file and config.tflite_quantize == "int8" and not config.dataset_dir:
        raise SlimError("--tflite_quantize=int8 needs --dataset_dir (TFRecords of the dataset) "
                        "to calibrate on; or pick --tflite_quantize=dynamic, which needs none.")
    if (config.saved_model_dir or config.tflite_file) and not config.checkpoint_path:
        raise SlimError("--saved_model_dir and --tflite_file carry the weights: pass "
                        "--checkpoint_path=train_dir/model.ckpt-N too.")


def _ref_variable_creator(next_creator, **kwargs):
    """Makes graph variables TF1 `VariableV2` nodes, as the original's export had.

    TensorFlow's own freeze_graph restores a name-based checkpoint only into
    `VariableV2` nodes (it cannot into `VarHandleOp`); slim-freeze takes both.
    """
    if kwargs.get("use_resource") is False:  # the v1 call below, back through this scope
        return next_creator(**kwargs)
    return tf.compat.v1.Variable(initial_value=kwargs["initial_value"], name=kwargs["name"],
                                 dtype=kwargs.get("dtype"),
                                 trainable=kwargs.get("trainable") is not False,
                                 use_resource=False)


def build_inference_graph(config: ExportConfig) -> ExportedGraph:
    """Builds the inference graph of `config.model_name` as a GraphDef.

    Raises:
      SlimError: unknown net or dataset, or a bad size.
    """
    _check_config(config)
    num_classes = resolve_num_classes(config)
    network_fn = nets_factory.get_network_fn(config.model_name, num_classes=num_classes,
                                             is_training=config.is_training,
                                             quantize=quantization.eval_quantize_config(config))
    spec = network_fn.spec
    size = config.image_size or spec.default_image_size
    shape = [config.batch_size, size, size, config.channels]
    graph = tf.Graph()
    with graph.as_default(), tf.variable_creator_scope(_ref_variable_creator):
        images = tf.compat.v1.placeholder(tf.float32, shape, name=INPUT_NAME)
        logits, end_points = network_fn(images)
    predictions = end_points.get(spec.predictions_key)
    output = predictions.op.name if predictions is not None else logits.op.name
    if spec.predictions_op and output != spec.predictions_op:
        raise SlimError(f"{spec.name}: the prediction op is {output!r}, but the registry says "
                        f"{spec.predictions_op!r}; the net and its registry entry disagree.")
    return ExportedGraph(
        graph_def=graph.as_graph_def(), model_name=spec.name, input_name=INPUT_NAME,
        output_name=output, logits_name=logits.op.name, input_shape=shape,
        num_classes=num_classes, variable_names=list(network_fn.variables_dict()),
        preprocessing=client_preprocessing(spec.preprocessing))


def describe(exported: ExportedGraph) -> str:
    """What a client needs: node names, input shape, and the preprocessing to apply."""
    pre = exported.preprocessing
    size = exported.image_size
    batch = "?" if exported.input_shape[0] is None else exported.input_shape[0]
    shape = f"[{batch}, {size}, {size}, {exported.input_shape[3]}]"
    approx = "" if pre.exact else " (approximately)"
    lines = [
        f"model: {exported.model_name} ({exported.num_classes} classes, "
        f"{len(exported.variable_names)} variables{', frozen' if exported.frozen else ''})",
        f"input node:  {exported.input_name}  float32 {shape}",
        f"output node: {exported.output_name}  (logits: {exported.logits_name})",
        f"preprocessing ({pre.name}): {pre.steps.format(size=size)}",
        f"label_image{approx}: --input_layer={exported.input_name} "
        f"--output_layer={exported.output_name} --input_width={size} --input_height={size} "
        f"--input_mean={pre.input_mean:g} --input_std={pre.input_std:g}",
    ]
    if pre.note:
        lines.append(f"note: {pre.note.format(size=size)}")
    if exported.input_shape[3] == 1:
        lines.append("note: the input is grayscale (1 channel): convert images to grayscale "
                     "before this normalization")
    if exported.output_name == exported.logits_name:
        lines.append(f"note: {exported.model_name} has no softmax: the output is logits; "
                     f"slim-predict --model_name={exported.model_name} applies the softmax")
    if not exported.frozen:
        lines.append(f"freeze: slim-freeze --input_graph=GRAPH --input_binary=true "
                     f"--input_checkpoint=CKPT --output_graph=FROZEN.pb "
                     f"--output_node_names={exported.output_name}")
    return "\n".join(lines)


def export(config: ExportConfig) -> ExportedGraph:
    """Runs `slim-export`: writes the graph (frozen with a checkpoint), SavedModel, TFLite.

    Returns:
      The exported graph and its client contract.

    Raises:
      SlimError: a flag is missing or wrong (the message names it).
    """
    config.validate()
    exported = build_inference_graph(config)
    if config.quantize and config.checkpoint_path:
        path = resolve_checkpoint_path(config.checkpoint_path)
        keys = tf.train.load_checkpoint(path).get_variable_to_shape_map()
        quantization.check_ranges(exported.variable_names, exported.model_name, path, keys)
    if config.checkpoint_path:
        exported.graph_def = freeze_graph_def(exported.graph_def, config.checkpoint_path,
                                              [exported.output_name])
        exported.frozen = True
    if config.output_file:
        write_graph_def(exported.graph_def, config.output_file, config.write_text_graphdef)
        log.info("wrote %s", config.output_file)
    if config.saved_model_dir or config.tflite_file:
        from slimcli import export_formats  # TFLite/SavedModel code only when asked for
        export_formats.export_serving_formats(config, exported)
    return exported
