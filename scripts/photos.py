"""Photo-like test images for the benchmark scripts (bench_table, bench_input, bench_convert).

Smooth colour waves plus pixel noise: they compress and decode about like photos
(a 500x375 one is about 70 KB as a quality-90 JPEG), unlike flat or random images.
"""

from __future__ import annotations

import numpy as np


def photo_pixels(rng: np.random.RandomState, height: int, width: int) -> np.ndarray:
    """One uint8 [height, width, 3] image drawn from `rng`."""
    y, x = np.mgrid[0:height, 0:width]
    a, b, c = rng.uniform(0.005, 0.05, 3)
    base = np.stack([np.sin(x * a + y * b + k * c * 40) for k in range(3)], -1)
    return ((base + 1) * 110 + rng.randint(0, 35, size=base.shape)).astype(np.uint8)
