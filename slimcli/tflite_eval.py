"""`slim-eval --tflite_file`: a TFLite model evaluated through the TFLite interpreter.

The model is one slim-export wrote (`--tflite_file`): images of a fixed size in,
class probabilities out; float, post-training int8 or fully integer (QAT).
An integer input takes the preprocessed image quantized with the model's own
scale and zero point, and an integer output is dequantized the same way, so the
metrics are those of the float evaluation on the same preprocessed images.

    classifier = TFLiteClassifier("model.tflite")
    probabilities = classifier(images)          # float [N, classes]
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim import metrics

__all__ = ["TFLiteClassifier", "make_tflite_step"]

# Log-probabilities are clipped here: a quantized output can round a class to probability 0.
_MIN_PROBABILITY = 1e-7


class TFLiteClassifier:
    """A TFLite image classifier run one image at a time (its batch is fixed).

    Attributes:
      path: the model file.
      image_size: the input height and width.
      channels: the input channels.
      input_type, output_type: the numpy dtypes of the input and output.
    """

    def __init__(self, path: str, num_threads: int | None = None):
        if not os.path.isfile(path):
            raise SlimError(f"--tflite_file={path} does not exist; write one with slim-export "
                            f"--tflite_file.")
        try:
            self._interpreter = tf.lite.Interpreter(model_path=path, num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise SlimError(f"--tflite_file={path} is not a TFLite model the interpreter can "
                            f"run ({str(e).splitlines()[0]}).") from None
        self.path = path
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        shape = self._input["shape"]
        if len(shape) != 4 or shape[1] != shape[2]:
            raise SlimError(f"--tflite_file={path} takes input of shape {list(shape)}; slim-eval "
                            f"evaluates image classifiers [batch, size, size, channels].")
        self.image_size, self.channels = int(shape[1]), int(shape[3])
        self.input_type, self.output_type = self._input["dtype"], self._output["dtype"]

    def _quantize(self, image: np.ndarray) -> np.ndarray:
        if self.input_type == np.float32:
            return image
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(self.input_type)
        return np.clip(np.round(image / scale + zero_point), info.min, info.max).astype(
            self.input_type)

    def _dequantize(self, values: np.ndarray) -> np.ndarray:
        if self.output_type == np.float32:
            return values
        scale, zero_point = self._output["quantization"]
        return (values.astype(np.float32) - zero_point) * scale

    def inputs(self, images: np.ndarray) -> list[np.ndarray]:
        """The model's input arrays (quantized where it takes integers) of float images."""
        return [self._quantize(image[None]) for image in np.asarray(images, np.float32)]

    def invoke(self, array: np.ndarray) -> np.ndarray:
        """The model's raw output on one input array (see `inputs`)."""
        self._interpreter.set_tensor(self._input["index"], array)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities [N, classes] of preprocessed float images [N, H, W, C]."""
        rows = [self._dequantize(self.invoke(array)) for array in self.inputs(images)]
        return np.concatenate(rows).reshape(len(rows), -1)


def make_tflite_step(classifier: TFLiteClassifier, metric_map: metrics.MetricMap,
                     num_classes: int) -> Callable:
    """`step(batch)`: the model's probabilities on a batch update every metric."""
    def step(batch) -> None:
        images, labels = batch
        probabilities = classifier(images.numpy())
        if probabilities.shape[1] != num_classes:
            raise SlimError(f"--tflite_file={classifier.path} gives {probabilities.shape[1]} "
                            f"classes, the dataset {num_classes}: check --dataset_name and "
                            f"--labels_offset.")
        probabilities = tf.constant(probabilities)
        labels = tf.cast(labels, tf.int64)
        predictions = tf.argmax(probabilities, 1)
        metric_map["eval/Accuracy"].update(predictions, labels)
        metric_map["eval/Recall_5"].update(probabilities, labels)
        chosen = tf.gather(probabilities, labels, batch_dims=1)
        metric_map["eval/Loss"].update(-tf.math.log(tf.maximum(chosen, _MIN_PROBABILITY)))
        if "eval/ConfusionMatrix" in metric_map.metrics:
            metric_map["eval/ConfusionMatrix"].update(predictions, labels)
    return step
