"""The input of training, evaluation and the benchmarks: slim TFRecords → preprocessed batches.

    from slimcli.input import build_input_pipeline
    ds = build_input_pipeline(files, fn, batch_size=32, image_size=299, is_training=True)

Modules, each importing only those listed before it (none imports this package):
- `records`: the slim `tf.train.Example` format: keys, `parse_example`, `decode_image`;
- `config`: the checked arguments of a pipeline (`PipelineConfig`) and their defaults;
- `checks`: the corrupt-record and label checks run inside tf.data, `PipelineStats`,
  and `pipeline_error_message` (their one-line error for the commands);
- `stream`: the streaming reader and decoder, in blocks of records;
- `decoded`: `DecodedImages`, a split decoded once (photos at a working side);
- `cache_file`: a decoded split kept in a file beside its records;
- `cache`: `DecodedCache`, a split decoded once into memory, and its batches;
- `pipeline`: `build_input_pipeline`, which assembles them.
"""

from slimcli.input.cache import DecodedCache
from slimcli.input.checks import CorruptRecord, PipelineStats, pipeline_error_message
from slimcli.input.pipeline import build_input_pipeline
from slimcli.input.records import decode_image, parse_example

__all__ = ["CorruptRecord", "DecodedCache", "PipelineStats", "build_input_pipeline",
           "decode_image", "parse_example", "pipeline_error_message"]
