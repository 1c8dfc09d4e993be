"""Image helpers: float [-1, 1] NHWC batches <-> uint8, grids, PNG."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np


def to_uint8(img, drange=(-1.0, 1.0)) -> np.ndarray:
    """[N, H, W, C] float in drange -> uint8 (rounded, clipped); grayscale stays 1 channel."""
    lo, hi = drange
    x = (np.asarray(img, np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, cols: int | None = None, pad: int = 0, pad_value: int = 255) -> np.ndarray:
    """[N, H, W, C] uint8 -> one [rows*H, cols*W, C] image (row-major), optional padding between cells."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    out = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), pad_value, images.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = images[i]
    return out


def save_png(path, image: np.ndarray) -> Path:
    """Write a [H, W, C] uint8 image atomically."""
    from PIL import Image
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    tmp = path.with_name(f'.{path.name}.tmp')
    Image.fromarray(image).save(tmp, format='PNG')
    os.replace(tmp, path)
    return path


def nvlabs_z(seeds, z_dim: int) -> np.ndarray:
    """z for each seed exactly as NVlabs generate.py: np.random.RandomState(seed).randn(1, z_dim)."""
    return np.concatenate([np.random.RandomState(s).randn(1, z_dim) for s in seeds]).astype(np.float32)


def parse_range(s: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]."""
    out = []
    for part in str(s).split(','):
        part = part.strip()
        if not part:
            continue
        if '-' in part:
            a, b = part.split('-', 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    if not out:
        raise ValueError(f'empty range {s!r}')
    return out
