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


def labelled_grid(cells, row_labels=None, col_labels=None, scale: int = 4, pad: int = 2, title: str | None = None,
                  background: int = 255) -> np.ndarray:
    """A grid for viewing: `cells` [rows, cols, H, W, C] uint8 upscaled `scale`x (nearest: pixels stay pixels),
    with the row labels drawn left of each row, the column labels above each column and an optional title line
    (PIL's default font). Returns a [H', W', 3] uint8 image."""
    from PIL import Image, ImageDraw, ImageFont
    cells = np.asarray(cells)
    if cells.ndim != 5:
        raise ValueError(f'cells must be [rows, cols, H, W, C], got shape {cells.shape}')
    if cells.shape[-1] == 1:
        cells = np.repeat(cells, 3, axis=-1)
    rows, cols, h, w, _ = cells.shape
    big = cells.repeat(scale, axis=2).repeat(scale, axis=3)
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))

    def size(text):
        x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=font)
        return x1 - x0, y1 - y0

    line = max(size('Ag')[1], 8) + 6
    rl = [str(s) for s in row_labels] if row_labels is not None else []
    cl = [str(s) for s in col_labels] if col_labels is not None else []
    left = max((size(s)[0] for s in rl), default=-8) + 8 + pad
    top = (line if cl else 0) + (line if title else 0)
    H, W = h * scale, w * scale
    out = Image.new('RGB', (left + cols * (W + pad), top + rows * (H + pad)), (background,) * 3)
    draw = ImageDraw.Draw(out)
    ink = (0, 0, 0) if background > 127 else (255, 255, 255)
    if title:
        draw.text((left, 3), title, fill=ink, font=font)
    for j, s in enumerate(cl[:cols]):
        tw = size(s)[0]
        draw.text((left + j * (W + pad) + max((W - tw) // 2, 0), top - line + 3), s, fill=ink, font=font)
    for i in range(rows):
        y = top + i * (H + pad)
        if i < len(rl):
            draw.text((4, y + (H - size(rl[i])[1]) // 2), rl[i], fill=ink, font=font)
        for j in range(cols):
            out.paste(Image.fromarray(big[i, j][..., :3]), (left + j * (W + pad), y))
    return np.asarray(out)
