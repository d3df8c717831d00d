"""Benchmark: folder conversion images/sec against the raw read + decode rate.

Generates a flowers-like tree (5 classes, 2,000 JPEGs of 240x320 by default)
in a temporary directory, then measures on this machine

  raw      reading every file and fully decoding it (the check the converter
           does), on the same number of threads as the conversion, and on one;
  convert  `slim-download --dataset_name=folder` through the library
           (listing, decode check, record serialization, sharded TFRecord writing,
           labels.txt and dataset.json).

Prints both rates and their ratio (goal: convert >= 80% of raw): the best of
--repeats interleaved runs, and the median ratio of back-to-back raw/convert
pairs. Also printed, because wall-clock rates swing on a shared machine:
images per CPU-second (process time, all threads), and the per-image CPU cost
of raw vs the converter's encoder measured image by image alternately (which
machine load affects alike: the steadiest figure).

    python scripts/bench_convert.py [--images=2000] [--threads=N] [--repeats=3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from photos import photo_pixels  # noqa: E402  (scripts/, the folder of this script)
from slimcli.datasets import folder, image_tree, images  # noqa: E402
from slimcli.datasets.convert import ConvertOptions, default_num_threads  # noqa: E402

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def photo_like(seed: int) -> bytes:
    """A photo-like 240x320 JPEG (`photos.photo_pixels`), quality 90."""
    out = io.BytesIO()
    Image.fromarray(photo_pixels(np.random.RandomState(seed), 240, 320)).save(
        out, format="JPEG", quality=90)
    return out.getvalue()


def make_tree(root: str, count: int) -> list[str]:
    paths = []
    for i in range(count):
        directory = os.path.join(root, CLASSES[i % len(CLASSES)])
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{i:05d}.jpg")
        with open(path, "wb") as f:
            f.write(photo_like(i))
        paths.append(path)
    return paths


def read_and_check(path: str) -> int:
    with open(path, "rb") as f:
        data = f.read()
    images.decode_check(data)
    return len(data)


def _rates(count: int, wall_start: float, cpu_start: float) -> tuple[float, float]:
    """(images per wall second, images per CPU second of this process)."""
    return (count / (time.perf_counter() - wall_start),
            count / max(1e-9, time.process_time() - cpu_start))


def raw_rate(paths: list[str], threads: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(read_and_check, paths, chunksize=16):
            pass
    return _rates(len(paths), wall, cpu)


def convert_rate(root: str, out: str, count: int, threads: int) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    options = ConvertOptions(image_dir=root, num_threads=threads, quiet=True)
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        report = folder.convert(out, options)
    rates = _rates(count, wall, cpu)
    written = sum(report.records.values())
    if written != count:
        raise SystemExit(f"conversion wrote {written} records, expected {count}")
    return rates


def interleaved_cpu_ms(root: str, paths: list[str], rounds: int) -> tuple[float, float]:
    """Per-image CPU ms of raw read + check and of the converter's encoder, alternating
    image by image on one thread, so machine load affects both alike."""
    encode = image_tree.make_encoder(root)
    raw = conv = 0.0
    for _ in range(rounds):
        for path in paths:
            start = time.thread_time()
            read_and_check(path)
            middle = time.thread_time()
            encode((os.path.relpath(path, root), 0))
            raw, conv = raw + middle - start, conv + time.thread_time() - middle
    count = rounds * len(paths)
    return 1000 * raw / count, 1000 * conv / count


def _best(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return max(a[0], b[0]), max(a[1], b[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=default_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="slimcli-bench-")
    try:
        root = os.path.join(work, "photos")
        start = time.perf_counter()
        paths = make_tree(root, args.images)
        mb = sum(os.path.getsize(p) for p in paths) / 1e6
        print(f"generated {len(paths)} JPEGs (240x320, {mb:.1f} MB) in "
              f"{time.perf_counter() - start:.1f}s; {os.cpu_count()} CPUs, "
              f"{args.threads} threads")
        raw_one = raw = conv = (0.0, 0.0)
        pair_ratios = []
        for _ in range(args.repeats):  # interleaved, so load changes hit all three
            raw_one = _best(raw_one, raw_rate(paths, 1))
            raw_now = raw_rate(paths, args.threads)
            conv_now = convert_rate(root, os.path.join(work, "out"), args.images, args.threads)
            pair_ratios.append(conv_now[0] / raw_now[0])
            raw, conv = _best(raw, raw_now), _best(conv, conv_now)
        print(f"{'':34} {'images/s':>9} {'images/CPU-s':>13}")
        for label, (wall, cpu) in (("raw read + decode check, 1 thread", raw_one),
                                   (f"raw read + decode check, {args.threads} thr.", raw),
                                   (f"folder conversion, {args.threads} thr.", conv)):
            print(f"{label:34} {wall:9.1f} {cpu:13.1f}")
        print(f"conversion / raw ({args.threads} threads): best {conv[0] / raw[0]:.1%} of "
              f"images/s, {conv[1] / raw[1]:.1%} of images per CPU-second; median of "
              f"back-to-back pairs {statistics.median(pair_ratios):.1%} (goal >= 80%)")
        raw_ms, enc_ms = interleaved_cpu_ms(root, paths, 2)
        print(f"per image, interleaved on one thread: raw {raw_ms:.3f} CPU-ms, converter encoder "
              f"(read + check + record) {enc_ms:.3f} CPU-ms: raw/encoder = {raw_ms / enc_ms:.1%}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
