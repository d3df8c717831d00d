"""Freezing: a GraphDef plus a checkpoint becomes one self-contained GraphDef.

Variable nodes (`VarHandleOp`, `VariableV2`) the outputs depend on become
`Const` nodes holding the checkpoint's values (read with
`tf.train.load_checkpoint`, by node name = checkpoint key); `ReadVariableOp`
reads of them become `Identity`. Everything the outputs do not need
(initializers, assigns, savers, training ops) is dropped, so the frozen graph
runs with nothing but its `input` placeholder fed.

    frozen = freeze_graph_def(graph_def, "train/model.ckpt-1000",
                              ["InceptionV3/Predictions/Reshape_1"])
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
from typing import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf import message, text_format

from slimcli import fileio
from slimcli.config import option
from slimcli.errors import SlimError
from slimcli.slim.checkpoints import resolve_checkpoint_path

log = logging.getLogger(__name__)

VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})
# Names and ops that look like a classifier's outputs, for "did you mean" lists.
_OUTPUT_NAME = re.compile(r"(predictions|softmax|logits|probabilities|Reshape_1$)", re.I)
_OUTPUT_OPS = frozenset({"Softmax", "Sigmoid", "ArgMax", "TopKV2"})


_UNUSED = "Accepted for compatibility; unused."


@dataclasses.dataclass
class FreezeConfig:
    """The settings of `slim-freeze`: TensorFlow freeze_graph's flags.

    `input_saver`, `restore_op_name`, `filename_tensor_name`, `input_meta_graph` and
    `checkpoint_version` are accepted and unused (the checkpoint is read by variable name).
    """
    input_graph: str = option("", "The GraphDef file to freeze.")
    input_saver: str = option("", _UNUSED)
    input_checkpoint: str = option("", "Checkpoint prefix (or directory) with the values.")
    checkpoint_version: int = option(2, "Accepted for compatibility (V1 and V2 checkpoints are "
                                        "both read).")
    output_graph: str = option("", "Where to write the frozen GraphDef (binary).")
    input_binary: bool = option(False, "Whether --input_graph is binary (the other format is "
                                       "tried too).")
    output_node_names: str = option("", "Comma-separated output node names.")
    restore_op_name: str = option("save/restore_all", _UNUSED)
    filename_tensor_name: str = option("save/Const:0", _UNUSED)
    clear_devices: bool = option(True, "Remove device placements.")
    initializer_nodes: str = option("", "Comma-separated nodes kept next to the outputs.")
    variable_names_whitelist: str = option("", "Only these variables become constants.")
    variable_names_blacklist: str = option("", "These variables stay variables.")
    variable_names_denylist: str = option("", "Newer TensorFlow's name for "
                                              "--variable_names_blacklist.")
    input_meta_graph: str = option("", _UNUSED)
    input_saved_model_dir: str = option("", "Freeze this SavedModel instead of --input_graph.")
    saved_model_tags: str = option("serve", "Tags of the SavedModel's MetaGraph, "
                                            "comma-separated.")

    @property
    def denied_variable_names(self) -> str:
        """--variable_names_blacklist and --variable_names_denylist together."""
        return ",".join(v for v in (self.variable_names_blacklist,
                                    self.variable_names_denylist) if v)

    def validate(self) -> None:
        """Logs the accepted-but-unused settings that were set; raises SlimError on a bad one."""
        for field in dataclasses.fields(self):
            unused = field.metadata.get("help") == _UNUSED
            if unused and getattr(self, field.name) != field.default:
                log.info("--%s is accepted for compatibility and not used.", field.name)
        if self.checkpoint_version not in (1, 2):
            raise SlimError(f"--checkpoint_version={self.checkpoint_version} must be 1 or 2.")
        if not self.output_graph:
            raise SlimError("--output_graph is required: where to write the frozen GraphDef.")


def _split(names: str | Sequence[str] | None) -> list[str]:
    if not names:
        return []
    if isinstance(names, str):
        names = names.split(",")
    return [n.strip() for n in names if n.strip()]


def node_name(tensor_or_node: str) -> str:
    """`^a/b`, `a/b:1` → `a/b`."""
    return tensor_or_node.lstrip("^").split(":")[0]


def load_graph_def(path: str, binary: bool = True) -> tf.compat.v1.GraphDef:
    """Reads a GraphDef file, binary or text; the other format is tried when the first fails.

    Raises:
      SlimError: the file is missing or is a GraphDef in neither format.
    """
    if not tf.io.gfile.exists(path):
        raise SlimError(f"--input_graph={path} does not exist; pass the file slim-export wrote.")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    graph_def = tf.compat.v1.GraphDef()
    for as_binary in (binary, not binary):
        try:
            if as_binary:
                graph_def.ParseFromString(data)
            else:
                text_format.Merge(data.decode("utf-8"), graph_def)
        except (message.DecodeError, text_format.ParseError, UnicodeDecodeError):
            graph_def.Clear()
            continue
        if as_binary != binary:
            log.info("%s is a %s GraphDef (read as such; --input_binary=%s fits it)", path,
                     "binary" if as_binary else "text", str(as_binary).lower())
        return graph_def
    raise SlimError(f"{path} is not a GraphDef (neither binary nor text); pass a graph written "
                    f"by slim-export or tf.io.write_graph.")


def output_candidates(graph_def: tf.compat.v1.GraphDef, wanted: str = "",
                      limit: int = 8) -> list[str]:
    """Nodes whose names or ops look like outputs, closest to `wanted` first."""
    consumed = {node_name(i) for n in graph_def.node for i in n.input}
    found = [n.name for n in graph_def.node
             if n.op in _OUTPUT_OPS or (_OUTPUT_NAME.search(n.name) and n.op != "Const")]
    if not found:  # no name looks like an output: the nodes nothing consumes
        found = [n.name for n in graph_def.node if n.name not in consumed]
    ratio = lambda name: difflib.SequenceMatcher(None, wanted, name).ratio()  # noqa: E731
    return sorted(found, key=lambda name: -ratio(name))[:limit]


def check_node_names(graph_def: tf.compat.v1.GraphDef, names: Iterable[str], flag: str) -> None:
    """Raises SlimError naming each of `names` the graph lacks, with candidates."""
    present = {n.name for n in graph_def.node}
    for name in names:
        if name not in present:
            candidates = ", ".join(output_candidates(graph_def, name))
            raise SlimError(f"{flag}: no node named {name!r} in the graph. Nodes that look like "
                            f"outputs, closest first: {candidates}.")


def _needed_nodes(graph_def: tf.compat.v1.GraphDef, dest: Sequence[str]) -> set[str]:
    """Names of the nodes `dest` depend on (data and control inputs), `dest` included."""
    inputs = {n.name: [node_name(i) for i in n.input] for n in graph_def.node}
    needed, stack = set(), list(dest)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(inputs[name])
    return needed


def _variable_filter(whitelist: Sequence[str], blacklist: Sequence[str]):
    allowed, denied = set(whitelist), set(blacklist)
    return lambda name: (not allowed or name in allowed) and name not in denied


def _const_node(var: tf.compat.v1.NodeDef, value, device: str) -> tf.compat.v1.NodeDef:
    node = tf.compat.v1.NodeDef(name=var.name, op="Const", device=device)
    dtype = tf.as_dtype(var.attr["dtype"].type)
    node.attr["dtype"].type = dtype.as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return node


def _read_variables(reader, var_nodes: list[tf.compat.v1.NodeDef], checkpoint: str) -> dict:
    """`{name: value}` from the checkpoint; a missing or misshapen variable is named."""
    shapes = reader.get_variable_to_shape_map()
    missing = [n.name for n in var_nodes if n.name not in shapes]
    if missing:
        close = difflib.get_close_matches(missing[0], list(shapes), n=1)
        hint = f" (closest key: {close[0]!r})" if close else ""
        raise SlimError(f"checkpoint {checkpoint} has no variable {missing[0]!r}{hint}; "
                        f"{len(missing)} of the graph's variables are missing: "
                        f"{', '.join(missing[:10])}. Pass the checkpoint of this net, or keep "
                        f"them as variables with --variable_names_blacklist.")
    values = {}
    for node in var_nodes:
        value = reader.get_tensor(node.name)
        expected = [d.size for d in node.attr["shape"].shape.dim] if "shape" in node.attr \
            else list(value.shape)
        if list(value.shape) != expected:
            raise SlimError(f"variable {node.name}: the graph has shape {expected}, checkpoint "
                            f"{checkpoint} has {list(value.shape)}. Export the graph with the "
                            f"settings the checkpoint was trained with (--num_classes, "
                            f"--labels_offset, --image_size).")
        values[node.name] = value
    return values


def freeze_graph_def(graph_def: tf.compat.v1.GraphDef, checkpoint: str,
                     output_node_names: str | Sequence[str], clear_devices: bool = True,
                     initializer_nodes: str | Sequence[str] = (),
                     variable_names_whitelist: str | Sequence[str] = (),
                     variable_names_blacklist: str | Sequence[str] = ()) -> tf.compat.v1.GraphDef:
    """Returns `graph_def` reduced to what the outputs need, its variables made constants.

    Args:
      graph_def: the inference graph (e.g. from slim-export).
      checkpoint: a checkpoint prefix, or a directory (its latest checkpoint).
      output_node_names: comma-separated names (or a list) of the output nodes.
      clear_devices: drop device placements.
      initializer_nodes: nodes kept in the frozen graph next to the outputs
        (e.g. table initializers a client runs first).
      variable_names_whitelist: if given, only these variables become constants.
      variable_names_blacklist: these variables stay variables.

    Returns:
      The frozen GraphDef.

    Raises:
      SlimError: an output node is not in the graph (candidates listed), or
        a variable is missing from the checkpoint or has another shape.
    """
    outputs = _split(output_node_names)
    if not outputs:
        examples = ", ".join(output_candidates(graph_def)[:3]) or "Predictions/Reshape_1"
        raise SlimError(f"--output_node_names is empty; name the output node, e.g. {examples}.")
    check_node_names(graph_def, outputs, "--output_node_names")
    check_node_names(graph_def, _split(initializer_nodes), "--initializer_nodes")
    keep = outputs + _split(initializer_nodes)
    path = resolve_checkpoint_path(checkpoint)
    needed = _needed_nodes(graph_def, keep)
    convert = _variable_filter(_split(variable_names_whitelist), _split(variable_names_blacklist))
    var_nodes = [n for n in graph_def.node
                 if n.name in needed and n.op in VARIABLE_OPS and convert(n.name)]
    values = _read_variables(tf.train.load_checkpoint(path), var_nodes, path)
    frozen = tf.compat.v1.GraphDef()
    frozen.versions.CopyFrom(graph_def.versions)
    frozen.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        if node.name not in needed:
            continue
        device = "" if clear_devices else node.device
        if node.name in values:
            frozen.node.append(_const_node(node, values[node.name], device))
            continue
        new = frozen.node.add()
        new.CopyFrom(node)
        new.device = device
        if node.op == "ReadVariableOp" and node_name(node.input[0]) in values:
            new.op = "Identity"
            new.attr["T"].type = node.attr["dtype"].type
            del new.attr["dtype"]
    log.info("froze %d variables; %d of %d nodes kept", len(values), len(frozen.node),
             len(graph_def.node))
    return frozen


def write_graph_def(graph_def: tf.compat.v1.GraphDef, path: str, as_text: bool = False) -> str:
    """Writes a GraphDef (binary, or text with `as_text`) atomically; returns `path`."""
    data = text_format.MessageToString(graph_def) if as_text else graph_def.SerializeToString(
        deterministic=True)
    return fileio.write_file(path, data)


def graph_runner(graph_def: tf.compat.v1.GraphDef, input_tensor: str = "input",
                 output_tensor: str = "", optimize: bool = True
                 ) -> Callable[[np.ndarray], np.ndarray]:
    """A function that feeds `input_tensor` of a frozen GraphDef and returns `output_tensor`.

    The graph is imported into a tf.Graph and Session of its own, never into the
    process's eager context: a SavedModel frozen in the process that exported it
    carries function names that process already holds with other bodies.

    Args:
      graph_def: a frozen GraphDef (no variables).
      input_tensor: the fed tensor, `name` or `name:0` (default `input`).
      output_tensor: the fetched tensor, `name` or `name:index`.
      optimize: let TensorFlow's graph optimizer (Grappler) rewrite the graph before its
        first run. False skips it: for a graph run once or twice, the rewrite of a large
        frozen graph (constant folding over hundreds of MB of weights) costs more than
        it saves.

    Returns:
      `run(images) -> numpy array`.
    """
    def tensor_name(name: str) -> str:
        return name if ":" in name else f"{name}:0"

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    fed = graph.get_tensor_by_name(tensor_name(input_tensor))
    fetched = graph.get_tensor_by_name(tensor_name(output_tensor))
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = not optimize
    session = tf.compat.v1.Session(graph=graph, config=config)
    return lambda images: session.run(fetched, {fed: np.asarray(images)})


def freeze_saved_model(saved_model_dir: str, tags: str | Sequence[str],
                       output_node_names: str | Sequence[str],
                       clear_devices: bool = True) -> tf.compat.v1.GraphDef:
    """Freezes the MetaGraph of a SavedModel with its own variable values.

    The SavedModel is loaded with TF1's loader into a session, as
    TensorFlow's freeze_graph does; output names are node names of that graph.
    With no output names, the `serving_default` signature's outputs are used
    (for slim-export's SavedModel: input `serving_default_images`, output
    `StatefulPartitionedCall`, whose `:2` is the probabilities).

    Raises:
      SlimError: the directory holds no SavedModel with these tags, or an
        output node is not in its graph.
    """
    tags = _split(tags)
    if not tf.saved_model.contains_saved_model(saved_model_dir):
        raise SlimError(f"--input_saved_model_dir={saved_model_dir} holds no saved_model.pb; "
                        f"pass the directory slim-export --saved_model_dir wrote.")
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        try:
            meta = tf.compat.v1.saved_model.loader.load(sess, tags, saved_model_dir)
        except RuntimeError as e:
            raise SlimError(f"--saved_model_tags={','.join(tags)}: {e}") from None
        graph_def = meta.graph_def
        outputs = _split(output_node_names) or _signature_outputs(meta)
        check_node_names(graph_def, outputs, "--output_node_names")
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(sess, graph_def, outputs)
    if clear_devices:
        for node in frozen.node:
            node.device = ""
    return frozen


def _signature_outputs(meta) -> list[str]:
    signature = meta.signature_def.get("serving_default")
    if signature is None:
        raise SlimError(f"--output_node_names is empty and the SavedModel has no serving_default "
                        f"signature (it has: {', '.join(meta.signature_def)}); name the outputs.")
    return sorted({node_name(t.name) for t in signature.outputs.values()})


def freeze(config: FreezeConfig) -> str:
    """Runs `slim-freeze`: writes the frozen graph to `config.output_graph`; returns its path.

    Raises:
      SlimError: a flag is missing or wrong (the message names it).
    """
    config.validate()
    if config.input_saved_model_dir:
        frozen = freeze_saved_model(config.input_saved_model_dir, config.saved_model_tags,
                                    config.output_node_names, config.clear_devices)
    else:
        if not config.input_graph:
            raise SlimError("--input_graph is required (or --input_saved_model_dir): the "
                            "GraphDef slim-export wrote.")
        if not config.input_checkpoint:
            raise SlimError("--input_checkpoint is required: a checkpoint prefix such as "
                            "train_dir/model.ckpt-1000, or a directory of checkpoints.")
        graph_def = load_graph_def(config.input_graph, config.input_binary)
        frozen = freeze_graph_def(graph_def, config.input_checkpoint, config.output_node_names,
                                  config.clear_devices, config.initializer_nodes,
                                  config.variable_names_whitelist,
                                  config.denied_variable_names)
    write_graph_def(frozen, config.output_graph)
    log.info("wrote %s (%d nodes)", config.output_graph, len(frozen.node))
    return config.output_graph
