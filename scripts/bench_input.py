#!/usr/bin/env python3
"""Input pipeline benchmark: images/sec of decode + preprocess, 1 vs N cores.

Writes a few hundred generated 500x375 JPEGs as TFRecords in a temp dir,
then measures, in one child process per core count (CPU affinity set before
TensorFlow starts, so TensorFlow sizes its thread pools to it):

  loop-resize     plain Python loop: decode_jpeg + bilinear resize to 224
                  (one tf.function call per image, no tf.data)
  loop-<work>     plain loop doing the pipeline's work: decode + <work>
  threads-<work>  the same loop in one Python thread per core (the raw work
                  spread over the cores without tf.data: the fair baseline)
  tfdata-<work>   a bare tf.data map (parse, decode, preprocess, batch): no
                  corrupt-record checks
  pipeline-<work> slimcli.input.build_input_pipeline

with <work> = inception-train-299 (inception training preprocessing at 299)
and vgg-eval-224 (vgg evaluation preprocessing at 224).

    python scripts/bench_input.py                 # 1 and 2 cores
    python scripts/bench_input.py --cores=1,2,4 --num_images=500
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARMUP_IMAGES = 128
WORKLOADS = {
    "inception-train-299": ("inception", True, 299),
    "vgg-eval-224": ("vgg", False, 224),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num_images", type=int, default=320)
    parser.add_argument("--num_files", type=int, default=4)
    parser.add_argument("--cores", default="1,2", help="comma-separated core counts")
    parser.add_argument("--images_per_round", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed rounds per variant, taken in turns; the median is kept")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--data_dir", default=None, help="reuse/write records here")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_jpeg_records(data_dir: str, num_images: int, num_files: int) -> list[str]:
    """Photo-like 500x375 JPEGs (`photos.photo_pixels`), quality 90."""
    import numpy as np
    import tensorflow as tf
    from photos import photo_pixels

    files = [os.path.join(data_dir, f"bench-{i:05d}-of-{num_files:05d}.tfrecord")
             for i in range(num_files)]
    if all(os.path.exists(f) for f in files):
        return files
    os.makedirs(data_dir, exist_ok=True)
    rng = np.random.RandomState(0)
    records = [[] for _ in files]
    for i in range(num_images):
        encoded = tf.io.encode_jpeg(photo_pixels(rng, 375, 500), quality=90).numpy()
        feature = {
            "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
            "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"jpeg"])),
            "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 1000])),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        records[i % num_files].append(example.SerializeToString())
    for path, file_records in zip(files, records):
        with tf.io.TFRecordWriter(path) as writer:
            for record in file_records:
                writer.write(record)
    return files


def measure_interleaved(variants: dict, images_per_round: int, rounds: int) -> dict:
    """Median images/sec (wall) and images per CPU-second of each variant.

    `variants[name]()` starts a fresh run and returns `iterate(n)`, which
    processes n images. Variants take turns round by round
    (`benchmark.time_interleaved`), so that drift of a shared machine affects
    them alike. Each round starts a new iterator and warms it up untimed,
    after dropping the previous one, so that no pipeline's background threads
    work while another is timed. CPU time is this process's (all threads):
    the efficiency of the work, hardly affected by other processes competing
    for the cores.
    """
    from slimcli.benchmark import time_interleaved
    current: dict = {}

    def prepare(name: str) -> None:
        current.clear()
        gc.collect()
        current[name] = variants[name]()
        current[name](WARMUP_IMAGES)  # tracing, autotuning ramp-up

    sides = {name: (lambda n, name=name: current[name](n), 1) for name in variants}
    figures = time_interleaved(sides, images_per_round, rounds, prepare=prepare)
    current.clear()
    return {name: {"wall": figures[name]["images_per_sec"],
                   "cpu": figures[name]["images_per_cpu_sec"]} for name in variants}


def loop_variant(encoded: list, step, num_threads: int = 1):
    """A variant calling `step(jpeg_bytes, i)` per image over `num_threads` Python threads."""
    def start_run():
        def iterate(n: int) -> None:
            def work(offset: int) -> None:
                for i in range(offset, n, num_threads):
                    step(encoded[i % len(encoded)], i)

            threads = [threading.Thread(target=work, args=(t,)) for t in range(num_threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return iterate
    return start_run


def dataset_variant(dataset, batch_size: int):
    """A variant drawing batches from a fresh iterator of `dataset` per run."""
    def start_run():
        iterator = iter(dataset)

        def iterate(n: int) -> None:
            for _ in range(max(1, n // batch_size)):
                next(iterator)
        return iterate
    return start_run


def bare_tfdata(files, preprocess, size, is_training, batch_size):
    import tensorflow as tf

    from slimcli.input import decode_image, parse_example

    def load(index, record):
        features = parse_example(record)
        kwargs = {"seed": tf.stack([index, 0])} if is_training else {}
        return preprocess(decode_image(features), size, size, **kwargs), features["image/class/label"]

    dataset = tf.data.TFRecordDataset(files).repeat().enumerate()
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def run_child(args: argparse.Namespace, files: list[str], cores: int) -> dict:
    import tensorflow as tf

    from slimcli.input import build_input_pipeline
    from slimcli.preprocessing import get_preprocessing

    encoded = [tf.io.parse_single_example(r, {"image/encoded": tf.io.FixedLenFeature([], tf.string)})
               ["image/encoded"] for r in tf.data.TFRecordDataset(files).take(args.num_images)]

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def decode_resize(jpeg):
        return tf.compat.v1.image.resize_bilinear(tf.io.decode_jpeg(jpeg, channels=3)[None], [224, 224])

    variants = {"loop-resize": loop_variant(encoded, lambda jpeg, i: decode_resize(jpeg))}
    for label, (name, is_training, size) in WORKLOADS.items():
        preprocess = get_preprocessing(name, is_training=is_training)
        kwargs = {"add_image_summaries": False} if name == "inception" else {}

        @tf.function(input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([2], tf.int64)])
        def decode_preprocess(jpeg, seed, preprocess=preprocess, size=size, kwargs=kwargs,
                              is_training=is_training):
            extra = dict(kwargs, seed=seed) if is_training else {}
            return preprocess(tf.io.decode_jpeg(jpeg, channels=3), size, size, **extra)

        step = lambda jpeg, i, fn=decode_preprocess: fn(jpeg, tf.constant([i, 1], tf.int64))  # noqa: E731
        variants[f"loop-{label}"] = loop_variant(encoded, step)
        variants[f"threads-{label}"] = loop_variant(encoded, step, num_threads=cores)
        variants[f"tfdata-{label}"] = dataset_variant(
            bare_tfdata(files, preprocess, size, is_training, args.batch_size), args.batch_size)
        # Streamed, as photo datasets are: these few one-size photos would otherwise be
        # decoded into memory once (slimcli.input.cache), and the comparison lost.
        pipeline = build_input_pipeline(files, preprocess, args.batch_size, size,
                                        is_training=is_training, repeat=True,
                                        decoded_cache_mb=0)
        variants[f"pipeline-{label}"] = dataset_variant(pipeline, args.batch_size)
    return measure_interleaved(variants, args.images_per_round, args.rounds)


def print_table(all_results: dict[int, dict]) -> None:
    cores = sorted(all_results)
    names = list(all_results[cores[0]])
    header = "".join(f"{f'{c} core(s)':>12s}{'per CPU-s':>11s}" for c in cores)
    print(f"{'images/sec (wall), images per CPU-second':42s}{header}")
    for name in names:
        row = "".join(f"{all_results[c][name]['wall']:12.1f}{all_results[c][name]['cpu']:11.1f}"
                      for c in cores)
        print(f"{name:42s}{row}")
    for label in WORKLOADS:
        for c in cores:
            r = all_results[c]
            ratio = lambda other, key: r[f"pipeline-{label}"][key] / r[f"{other}-{label}"][key]  # noqa: E731
            print(f"{label} @ {c} core(s): pipeline / loop = {ratio('loop', 'wall'):.2f} "
                  f"(per CPU-s {ratio('loop', 'cpu'):.2f}), pipeline / threaded loop = "
                  f"{ratio('threads', 'wall'):.2f}, pipeline / bare tf.data = "
                  f"{ratio('tfdata', 'wall'):.2f} (per CPU-s {ratio('tfdata', 'cpu'):.2f})")
        if len(cores) > 1:
            first, last = (all_results[c][f"pipeline-{label}"]["wall"] for c in (cores[0], cores[-1]))
            print(f"{label}: pipeline speed-up {cores[0]} -> {cores[-1]} cores = {last / first:.2f}x")


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.child:
        files = sorted(os.path.join(args.data_dir, f) for f in os.listdir(args.data_dir)
                       if f.endswith(".tfrecord"))
        print("RESULT " + json.dumps(run_child(args, files, len(os.sched_getaffinity(0)))))
        return 0
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="bench_input_")
    files = write_jpeg_records(data_dir, args.num_images, args.num_files)
    size_kb = sum(os.path.getsize(f) for f in files) / args.num_images / 1024
    print(f"{args.num_images} JPEGs 500x375 (~{size_kb:.0f} KB each) in {len(files)} files under "
          f"{data_dir}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    all_results = {}
    for cores in [int(c) for c in args.cores.split(",")]:
        child_args = [a for a in (argv if argv is not None else sys.argv[1:])
                      if not a.startswith("--data_dir")]
        command = [sys.executable, os.path.abspath(__file__), "--child", f"--data_dir={data_dir}",
                   *child_args]
        affinity = sorted(os.sched_getaffinity(0))[:cores]
        output = subprocess.run(command, check=True, capture_output=True, text=True,
                                preexec_fn=lambda a=affinity: os.sched_setaffinity(0, a)).stdout
        all_results[cores] = json.loads(output.split("RESULT ", 1)[1])
    print_table(all_results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": all_results, "args": vars(args)}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
