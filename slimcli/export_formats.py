"""SavedModel and TFLite exports of a net restored from a checkpoint (TF2 native).

The SavedModel has two signatures:

* `serving_default`: `images` float32 [batch, size, size, C], already
  preprocessed (the same tensor the GraphDef's `input` takes);
* `serving_encoded_image`: `image_bytes` string [batch] of encoded JPEG, PNG,
  GIF or BMP files; each is decoded and given the net's eval preprocessing.

Both return `probabilities` [batch, classes], `logits` and `classes` (argmax).
The TFLite model takes the float images (batch fixed to `--batch_size`,
default 1) and returns the probabilities only, optionally quantized:
float16 weights, dynamic-range int8 weights, or full int8 calibrated on
images from `--dataset_dir`'s TFRecords.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf

from slimcli import fileio, quantization, slim
from slimcli.datasets import get_dataset
from slimcli.errors import SlimError
from slimcli.nets import NetworkFn, nets_factory
from slimcli.preprocessing import get_preprocessing

log = logging.getLogger(__name__)

FLOAT_SIGNATURE = "serving_default"
ENCODED_SIGNATURE = "serving_encoded_image"


def restore_net(config, exported) -> NetworkFn:
    """The net of `exported` in inference mode with the checkpoint's values (quantized with
    its learnt ranges under `--quantize`)."""
    net = nets_factory.get_network_fn(config.model_name, exported.num_classes, is_training=False,
                                      quantize=quantization.eval_quantize_config(config))
    net.build([1, *exported.input_shape[1:]])
    slim.assign_from_checkpoint(config.checkpoint_path, net.variables_dict())
    return net


def _classify_fn(net: NetworkFn) -> Callable:
    def classify(images: tf.Tensor) -> dict[str, tf.Tensor]:
        logits, end_points = net(images, is_training=False)
        probabilities = end_points.get(net.spec.predictions_key)
        if probabilities is None:  # VGG and friends have no softmax end point
            probabilities = tf.nn.softmax(logits)
        return {"probabilities": probabilities, "logits": logits,
                "classes": tf.argmax(logits, axis=-1)}
    return classify


def eval_preprocess_fn(config, size: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """Encoded image bytes → the net's eval-preprocessed float image."""
    spec = nets_factory.get_net_spec(config.model_name)
    preprocess = get_preprocessing(spec.preprocessing, is_training=False,
                                   use_grayscale=config.use_grayscale)

    def one(encoded: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return preprocess(image, size, size)
    return one


def build_serving_module(config, exported, net: NetworkFn) -> tf.Module:
    """A tf.Module holding the net and its two serving functions."""
    size, channels = exported.image_size, exported.input_shape[3]
    classify = _classify_fn(net)
    preprocess = eval_preprocess_fn(config, size)
    image_spec = tf.TensorSpec([size, size, channels], tf.float32)

    def classify_encoded(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(preprocess, image_bytes, fn_output_signature=image_spec)
        return classify(images)

    module = tf.Module()
    module.net = net
    module.classify = tf.function(classify, input_signature=[
        tf.TensorSpec([None, size, size, channels], tf.float32, name="images")])
    module.classify_encoded = tf.function(classify_encoded, input_signature=[
        tf.TensorSpec([None], tf.string, name="image_bytes")])
    return module


def save_saved_model(module: tf.Module, directory: str) -> str:
    """Writes the SavedModel under a temporary name, then renames it into place."""
    signatures = {FLOAT_SIGNATURE: module.classify.get_concrete_function(),
                  ENCODED_SIGNATURE: module.classify_encoded.get_concrete_function()}
    with fileio.writing_dir(directory) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
    log.info("wrote SavedModel %s (signatures %s, %s)", directory, FLOAT_SIGNATURE,
             ENCODED_SIGNATURE)
    return directory


def _tfrecord_files(dataset_name: str, dataset_dir: str) -> list[str]:
    """The records of a split of the dataset (validation first), else any TFRecords there."""
    for split in ("validation", "test", "train"):
        try:
            files = list(get_dataset(dataset_name, split, dataset_dir).files)
        except SlimError:
            continue
        if files:
            return files
    patterns = ("*.tfrecord", "*.tfrecord-*", "*-of-*", "*.record-*")
    files = sorted({f for p in patterns for f in tf.io.gfile.glob(os.path.join(dataset_dir, p))})
    if not files:
        raise SlimError(f"--tflite_quantize=int8 calibrates on TFRecords, but --dataset_dir="
                        f"{dataset_dir!r} has none (*.tfrecord, *-of-*); run slim-download "
                        f"first or pass the dataset's directory.")
    return files


def calibration_images(config, size: int) -> Iterator[list[tf.Tensor]]:
    """Yields `[image batch of 1]` from the dataset's TFRecords for int8 calibration."""
    if not config.dataset_dir:
        raise SlimError("--tflite_quantize=int8 needs --dataset_dir (TFRecords of the "
                        "dataset) to calibrate on.")
    preprocess = eval_preprocess_fn(config, size)
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
    records = tf.data.TFRecordDataset(_tfrecord_files(config.dataset_name, config.dataset_dir))
    for record in records.take(config.calibration_steps):
        encoded = tf.io.parse_single_example(record, features)["image/encoded"]
        yield [preprocess(encoded)[tf.newaxis]]


def convert_tflite(config, exported, module: tf.Module) -> bytes:
    """The TFLite flatbuffer (images → probabilities), quantized per `config.tflite_quantize`."""
    batch = config.batch_size or 1
    spec = tf.TensorSpec([batch, *exported.input_shape[1:]], tf.float32, name="images")
    probabilities = tf.function(lambda images: module.classify(images)["probabilities"])
    concrete = probabilities.get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    if config.quantize:
        return _integer_tflite(converter, config.tflite_io_type)
    mode = config.tflite_quantize
    if mode != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.representative_dataset = lambda: calibration_images(config,
                                                                      exported.image_size)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _integer_tflite(converter: tf.lite.TFLiteConverter, io_type: str) -> bytes:
    """A fully integer model from a graph with fake quantization: the converter takes every
    range from the FakeQuant ops, so no calibration data is needed.

    Raises:
      SlimError: some tensor stayed float (an op the converter could not quantize).
    """
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = tf.as_dtype(io_type)
    converter.inference_output_type = tf.as_dtype(io_type)
    model = converter.convert()
    floats = float_tensors(model)
    if floats:
        raise SlimError(f"the TFLite model of the quantized net is not fully integer: "
                        f"{len(floats)} tensors stayed float (e.g. {floats[0]}); the net has an "
                        f"op without a quantization range.")
    return model


def float_tensors(model: bytes) -> list[str]:
    """The names of a TFLite model's float tensors."""
    interpreter = tf.lite.Interpreter(model_content=model)
    return [d["name"] for d in interpreter.get_tensor_details()
            if d["dtype"] in (np.float32, np.float16)]


def export_serving_formats(config, exported) -> None:
    """Writes `config.saved_model_dir` and/or `config.tflite_file`."""
    net = restore_net(config, exported)
    module = build_serving_module(config, exported, net)
    if config.saved_model_dir:
        save_saved_model(module, config.saved_model_dir)
    if config.tflite_file:
        fileio.write_file(config.tflite_file, convert_tflite(config, exported, module))
        kind = f"integer, {config.tflite_io_type} input/output" if config.quantize else \
            f"quantize={config.tflite_quantize}"
        log.info("wrote TFLite %s (%s)", config.tflite_file, kind)
