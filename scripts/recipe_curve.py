"""Validation accuracy against minutes: the photos recipe beside today's settings, and its plot.

    python scripts/recipe_curve.py /data/flower_photos --minutes=5,10,20 --work_dir=/tmp/curve

For each number of minutes, runs `scripts/recipes/train_from_scratch_on_photos.sh IMAGE_DIR
WORK MINUTES` twice: with the recipe's settings, and with today's (the settings a user would
have passed before the recipe: adam at 0.001 with the original's `--opt_epsilon=1.0`, its
exponential decay, batch-norm decay 0.99, every photo decoded whole each epoch), the same net,
size and time budget. Each run converts, trains and evaluates within its minutes, one after
the other (never two at once). The figures (accuracy, minutes taken, the host's load average
before and after, the settings) go to `--json`, the plot to `--png` (drawn with Pillow).
Runs already in the JSON are kept unless run again (same settings and minutes), so the curve
can be measured in parts. `--plot_only` redraws the plot from the JSON. On a shared host the load lowers every figure:
compare only runs of one invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "scripts", "recipes", "train_from_scratch_on_photos.sh")
# Today's settings: the first run, the time budget aside.
TODAY_FLAGS = ("--optimizer=adam --learning_rate=0.001 --opt_epsilon=1.0 "
               "--learning_rate_decay_type=exponential --end_learning_rate=0.0001 "
               "--warmup_epochs=0 --label_smoothing=0 --weight_decay=0.00004 "
               "--batch_norm_decay=0.99 --recompute_batch_norm_stats=0 --moving_average_decay=0 "
               "--randaugment= --mixup_alpha=0 --cutmix_alpha=0 --random_erasing=0 "
               "--decode_side=full --decoded_cache_mb=0 --batch_size=32 --min_crop_area=0.05")
SETTINGS = {"recipe": {}, "today": {"EXTRA_TRAIN_FLAGS": TODAY_FLAGS, "MODEL": "mobilenet_v1_025",
                                    "IMAGE_SIZE": "128", "EVAL_IMAGE_SIZE": "128"}}
ACCURACY = re.compile(r"^validation accuracy: ([0-9.]+)% of (\d+) photos, after ([0-9.]+) "
                      r"minutes", re.M)


def run_recipe(image_dir: str, work_dir: str, minutes: float, settings: str) -> dict:
    """One run of the recipe; its accuracy, the minutes it took and the host's load."""
    env = {**os.environ, **SETTINGS[settings]}
    load_before, start = os.getloadavg()[0], time.time()
    result = subprocess.run(["bash", RECIPE, image_dir, work_dir, f"{minutes:g}"], env=env,
                            capture_output=True, text=True)
    found = ACCURACY.search(result.stdout)
    if result.returncode or not found:
        sys.exit(f"{settings} at {minutes:g} minutes failed:\n{result.stdout[-2000:]}\n"
                 f"{result.stderr[-2000:]}")
    return {"settings": settings, "minutes": minutes, "accuracy": float(found.group(1)) / 100,
            "photos": int(found.group(2)), "minutes_taken": (time.time() - start) / 60,
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "train_command": next((line for line in result.stdout.splitlines()
                                   if line.startswith("$ slim-train")), "")}


def _host() -> str:
    """The CPU model and its vector flags (the figures depend on them)."""
    model, flags = "?", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = [x for x in value.split() if x.startswith(("avx", "amx"))]
                    break
    except OSError:
        pass
    return f"{model} ({' '.join(flags)})"


def _scale(value: float, low: float, high: float, start: int, end: int) -> float:
    return start + (value - low) / (high - low) * (end - start)


def draw(figures: list[dict], path: str, title: str) -> None:
    """A line per settings: validation accuracy (y, %) against minutes (x)."""
    from PIL import Image, ImageDraw
    width, height, left, right, top, bottom = 720, 440, 70, 170, 40, 60
    image = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(image)
    minutes = sorted({f["minutes"] for f in figures})
    x_max = max(minutes) * 1.05
    for percent in range(0, 101, 10):  # y grid and labels
        y = _scale(percent, 0, 100, height - bottom, top)
        pen.line([(left, y), (width - right, y)], fill=(225, 225, 225))
        pen.text((left - 30, y - 6), f"{percent}%", fill="black")
    for value in minutes:  # x ticks
        x = _scale(value, 0, x_max, left, width - right)
        pen.line([(x, height - bottom), (x, height - bottom + 5)], fill="black")
        pen.text((x - 6, height - bottom + 8), f"{value:g}", fill="black")
    pen.rectangle([left, top, width - right, height - bottom], outline="black")
    pen.text((left + (width - left - right) // 2 - 20, height - 25), "minutes", fill="black")
    pen.text((left, 12), title, fill="black")
    colours = {"recipe": (31, 119, 180), "today": (214, 39, 40)}
    for row, (name, colour) in enumerate(colours.items()):
        points = sorted((f["minutes"], f["accuracy"]) for f in figures if f["settings"] == name)
        xy = [(_scale(m, 0, x_max, left, width - right),
               _scale(100 * a, 0, 100, height - bottom, top)) for m, a in points]
        if len(xy) > 1:
            pen.line(xy, fill=colour, width=3)
        for x, y in xy:
            pen.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
        label = "the recipe" if name == "recipe" else "today's settings"
        pen.line([(width - right + 12, top + 12 + 20 * row), (width - right + 36,
                                                              top + 12 + 20 * row)],
                 fill=colour, width=3)
        pen.text((width - right + 42, top + 6 + 20 * row), label, fill="black")
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image_dir", nargs="?", help="a folder of class folders of photos")
    parser.add_argument("--minutes", default="5,10,20", help="comma list of budgets")
    parser.add_argument("--settings", default="recipe,today", help="recipe, today or both")
    parser.add_argument("--work_dir", default="/tmp/recipe_curve")
    parser.add_argument("--json", default=os.path.join(ROOT, "docs", "train_photos_curve.json"))
    parser.add_argument("--png", default=os.path.join(ROOT, "docs", "train_photos_curve.png"))
    parser.add_argument("--title", default="Validation top-1 against minutes, conversion "
                                           "included (2 cores)")
    parser.add_argument("--plot_only", action="store_true", help="redraw from --json")
    args = parser.parse_args()
    if args.plot_only:
        with open(args.json) as f:
            figures = json.load(f)["runs"]
    else:
        if not args.image_dir:
            parser.error("IMAGE_DIR is needed unless --plot_only")
        figures = []
        if os.path.exists(args.json):  # earlier parts of the curve
            with open(args.json) as f:
                figures = json.load(f)["runs"]
        for minutes in (float(m) for m in args.minutes.split(",")):
            for settings in args.settings.split(","):
                work = os.path.join(args.work_dir, f"{settings}-{minutes:g}")
                subprocess.run(["rm", "-rf", work], check=True)
                run = run_recipe(args.image_dir, work, minutes, settings)
                figures = [f for f in figures
                           if (f["settings"], f["minutes"]) != (settings, minutes)] + [run]
                print(json.dumps(run), flush=True)
                with open(args.json, "w") as f:
                    json.dump({"host": _host(), "cores": os.cpu_count(),
                               "image_dir": os.path.abspath(args.image_dir), "runs": figures},
                              f, indent=1)
    draw(figures, args.png, args.title)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
