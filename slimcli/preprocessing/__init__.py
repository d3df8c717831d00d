"""Image preprocessing of the TF-Slim model zoo: inception, vgg, cifarnet, lenet.

    fn = get_preprocessing("inception_v3", is_training=False)
    image = fn(image_uint8, 299, 299)          # float32 [299, 299, 3] in [-1, 1]

See docs/preprocessing.md for what each function does and how it matches
the original.
"""

from slimcli.preprocessing.factory import (
    DEFAULTS_NOT_IN_ORIGINAL,
    PREPROCESSING,
    PREPROCESSING_FOR_MODEL,
    Preprocessing,
    PreprocessingEntry,
    get_preprocessing,
    preprocessing_for_net,
    preprocessing_name_for_model,
    resolve_preprocessing_name,
)

__all__ = [
    "DEFAULTS_NOT_IN_ORIGINAL",
    "PREPROCESSING",
    "PREPROCESSING_FOR_MODEL",
    "Preprocessing",
    "PreprocessingEntry",
    "get_preprocessing",
    "preprocessing_for_net",
    "preprocessing_name_for_model",
    "resolve_preprocessing_name",
]
