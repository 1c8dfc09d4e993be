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
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = images[i]
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


def labelled_grid(
    cells,
    row_labels=None,
    col_labels=None,
    scale: int = 4,
    pad: int = 2,
    title: str | None = None,
    background: int = 255,
) -> np.ndarray:
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


def line_plot(series: dict, width: int = 480, height: int = 200, title: str = '', xlabel: str = '') -> np.ndarray:
    """A small line chart of {name: (x, y)} drawn with PIL (no plotting library needed; notebooks show it
    inline): axes with min/max ticks, one colour per series and a legend. Returns [H, W, 3] uint8."""
    from PIL import Image, ImageDraw, ImageFont

    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]
    font = ImageFont.load_default()
    im = Image.new('RGB', (width, height), (255, 255, 255))
    d = ImageDraw.Draw(im)
    pts = {k: (np.asarray(x, float), np.asarray(y, float)) for k, (x, y) in series.items() if len(x)}
    left, right, top, bottom = 48, 10, 18 if title else 8, 28
    if title:
        d.text((left, 3), title, fill=(0, 0, 0), font=font)
    d.rectangle([left, top, width - right, height - bottom], outline=(0, 0, 0))
    if not pts:
        d.text((left + 8, top + 8), 'no data yet', fill=(0, 0, 0), font=font)
        return np.asarray(im)
    xs = np.concatenate([x for x, _ in pts.values()])
    ys = np.concatenate([y for _, y in pts.values()])
    ys = ys[np.isfinite(ys)]
    x0, x1 = float(xs.min()), float(xs.max()) if xs.max() > xs.min() else float(xs.min()) + 1
    y0, y1 = (float(ys.min()), float(ys.max())) if ys.size else (0.0, 1.0)
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    px = lambda x: left + (x - x0) / (x1 - x0) * (width - right - left)
    py = lambda y: height - bottom - (y - y0) / (y1 - y0) * (height - bottom - top)
    for i, (name, (x, y)) in enumerate(pts.items()):
        c = colours[i % len(colours)]
        xy = [(px(a), py(b)) for a, b in zip(x, y) if np.isfinite(b)]
        if len(xy) > 1:
            d.line(xy, fill=c, width=2)
        for p in xy[-1:]:
            d.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=c)
        d.text((left + 8 + 90 * i, top + 4), f'{name} {y[-1]:.3f}', fill=c, font=font)
    d.text((4, top), f'{y1:.2f}', fill=(0, 0, 0), font=font)
    d.text((4, height - bottom - 10), f'{y0:.2f}', fill=(0, 0, 0), font=font)
    d.text((left, height - bottom + 4), f'{x0:g}', fill=(0, 0, 0), font=font)
    d.text((width - right - 40, height - bottom + 4), f'{x1:g}', fill=(0, 0, 0), font=font)
    if xlabel:
        d.text((width // 2 - 20, height - bottom + 4), xlabel, fill=(0, 0, 0), font=font)
    return np.asarray(im)
