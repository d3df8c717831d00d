"""Makes a folder of large photos (2 MP by default) from a folder of class sub-folders.

For measuring the input pipeline on the photos users bring (a phone takes 12 MP): each
photo is resized (Lanczos) to WIDTHxHEIGHT, or HEIGHTxWIDTH when it is portrait, and
saved as a quality-90 JPEG under OUT/<class>/. Keep OUT outside the repository.

    python scripts/make_large_photos.py /data/flower_photos /data/flowers_2mp --count=1500
    slim-download --dataset_name=folder --image_dir=/data/flowers_2mp --dataset_dir=/data/2mp
    slim-benchmark --model_name=mobilenet_v1_025 --image_size=128 --mode=train \
        --data=/data/2mp --compare_synthetic
"""

from __future__ import annotations

import argparse
import os

from PIL import Image


def large_photos(src: str, out: str, count: int, width: int, height: int) -> int:
    """Writes up to `count` photos of `src`'s class folders, spread over the classes."""
    classes = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    files = {c: sorted(f for f in os.listdir(os.path.join(src, c)) if not f.startswith("."))
             for c in classes}
    written, index = 0, 0
    while written < count and any(index < len(f) for f in files.values()):
        for name in classes:
            if written == count or index >= len(files[name]):
                continue
            with Image.open(os.path.join(src, name, files[name][index])) as image:
                image = image.convert("RGB")
                size = (width, height) if image.width >= image.height else (height, width)
                os.makedirs(os.path.join(out, name), exist_ok=True)
                target = os.path.join(out, name, os.path.splitext(files[name][index])[0] + ".jpg")
                image.resize(size, Image.LANCZOS).save(target, quality=90)
            written += 1
        index += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="a folder of class sub-folders of photos")
    parser.add_argument("out", help="where the large photos go (outside the repository)")
    parser.add_argument("--count", type=int, default=1500, help="photos written")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    args = parser.parse_args()
    written = large_photos(args.src, args.out, args.count, args.width, args.height)
    print(f"wrote {written} photos of {args.width}x{args.height} into {args.out}")


if __name__ == "__main__":
    main()
