"""Pixel data: a cached phantom per (kind, size) plus deterministic noise per image.

Pixels only need to be plausible and consistent with Rows/Columns/BitsAllocated; they carry no findings.
Building each phantom once and adding seeded noise keeps even full-size series fast.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from cohortpool.synth.font import render

#: stored bits of every grayscale image we write (values stay within 0..4095)
BITS_STORED = 12


@lru_cache(maxsize=32)
def _phantom(kind: str, rows: int, cols: int) -> np.ndarray:
    """A body outline with a spine, in stored values (CT: HU + 1024)."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rows / 2, cols / 2
    img = np.zeros((rows, cols), dtype=np.float32)
    if kind == "CT":  # axial: body ellipse, vertebral body circle behind the centre
        body = ((x - cx) / (0.42 * cols)) ** 2 + ((y - cy) / (0.32 * rows)) ** 2 <= 1
        spine = (x - cx) ** 2 + (y - 1.35 * cy) ** 2 <= (0.07 * cols) ** 2
        img[:] = 24  # air at -1000 HU
        img[body] = 1064  # soft tissue ~ +40 HU
        img[spine] = 1724  # bone ~ +700 HU
    elif kind == "MR":  # sagittal: a column of vertebral bodies with discs between
        body = np.abs(x - cx) <= 0.35 * cols
        img[body] = 380
        column = np.abs(x - 0.55 * cols) <= 0.09 * cols
        discs = (np.floor(y / max(rows / 12, 1)) % 2) == 0
        img[column & discs] = 900
        img[column & ~discs] = 520
    else:  # radiograph: soft-tissue gradient with a bright spine
        img[:] = 600 + 900 * np.exp(-(((x - cx) / (0.45 * cols)) ** 2))
        img[np.abs(x - cx) <= 0.08 * cols] = 2600
    return img.astype(np.uint16)


def image(kind: str, rows: int, cols: int, rng: np.random.Generator) -> bytes:
    """Little-endian 16-bit pixel bytes of one image (``kind`` CT, MR or XR)."""
    noise = rng.integers(0, 48, size=(rows, cols), dtype=np.uint16)
    pixels = _phantom(kind, rows, cols) + noise
    return bytes(np.minimum(pixels, (1 << BITS_STORED) - 1).astype("<u2").tobytes())


#: where the burned-in label sits in a screenshot, and its scale (tests read it back)
LABEL_ORIGIN = (8, 8)
LABEL_SCALE = 2


def screenshot(rows: int, cols: int, lines: list[str], rng: np.random.Generator) -> bytes:
    """An 8-bit screen capture of an image viewer with ``lines`` of text burned into the top-left."""
    canvas = (rng.integers(0, 30, size=(rows, cols)) + _phantom("MR", rows, cols) // 8).astype(np.uint8)
    y0, x0 = LABEL_ORIGIN
    for line in lines:
        raster = render(line, scale=LABEL_SCALE)
        h, w = raster.shape
        w = min(w, cols - x0)
        canvas[y0 : y0 + h, x0 : x0 + w][raster[:, :w]] = 255
        canvas[y0 : y0 + h, x0 : x0 + w][~raster[:, :w]] = 0
        y0 += h + 4
    return bytes(canvas.tobytes())
