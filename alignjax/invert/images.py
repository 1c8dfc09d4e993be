"""Load images to invert: files, folders or a dataset spec, centre-cropped and resized to the generator's size.

    names, images = load_images(['a.jpg', 'photos/'], 256)          # uint8 [N, 256, 256, 3]
    names, images = load_images('proc:faces?n=8', 64)                 # through alignjax.data.make_dataset

Files and folders go through `alignjax.data.decode_image` (EXIF orientation, any PIL mode to RGB, largest
centred square, Lanczos resize). Names are file stems (folder-relative paths joined with '__' when they
would clash); dataset items are named by index.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

_SPEC = re.compile(r'^(folder|zip|tfds|proc):')


def _image_exts():
    from alignjax.data._image import IMAGE_EXTENSIONS
    return {e.lower() for e in IMAGE_EXTENSIONS}


def _safe(name: str) -> str:
    name = re.sub(r'[^A-Za-z0-9._+-]+', '_', name).strip('._') or 'image'
    return name


def list_image_files(path) -> list[Path]:
    p = Path(path)
    exts = _image_exts()
    if p.is_dir():
        files = sorted(f for f in p.rglob('*') if f.is_file() and f.suffix.lower() in exts
                       and not any(part.startswith('.') for part in f.relative_to(p).parts))
        if not files:
            raise FileNotFoundError(f'{p}: no images found (extensions {sorted(exts)})')
        return files
    if p.is_file():
        return [p]
    raise FileNotFoundError(f'{p}: no such file or folder')


def _names_for(files: Sequence[Path], roots: Sequence[Path]) -> list[str]:
    """File stems; stems that clash become folder-relative paths joined by '__' with the extension kept
    ('a__x_png'), numbered if they still clash."""
    stems = [_safe(f.stem) for f in files]
    counts = {s: stems.count(s) for s in stems}
    names = []
    for f, root, stem in zip(files, roots, stems):
        if counts[stem] == 1:
            names.append(stem)
            continue
        rel = f.relative_to(root.parent) if root.is_dir() else Path(f.name)
        parts = list(rel.with_suffix('').parts)
        if f.suffix:
            parts[-1] += '_' + f.suffix.lstrip('.').lower()
        names.append(_safe('__'.join(parts)))
    seen, out = {}, []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f'{n}_{k}')
    return out


def load_images(sources, resolution: int, max_images: int | None = None) -> tuple[list[str], np.ndarray]:
    """(names, uint8 [N, R, R, 3]) from a path, a list of paths, or one dataset spec
    ('folder:', 'zip:', 'tfds:', 'proc:' prefixes or an NVlabs *.zip)."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = [os.fspath(s) for s in sources]
    if len(sources) == 1 and (_SPEC.match(sources[0]) or sources[0].lower().endswith('.zip')):
        from alignjax.data import make_dataset
        ds = make_dataset(sources[0], resolution, max_images=max_images)
        n = len(ds)
        imgs = np.stack([np.asarray(ds[i]['image'], np.uint8) for i in range(n)])
        width = max(5, len(str(n - 1)))
        names = []
        for i in range(n):
            d = ds.describe(i)
            stem = Path(d.split(':')[-1]).stem if ('/' in d or '.' in d) and not d.endswith(']') else ''
            names.append(_safe(f'{i:0{width}d}_{stem}' if stem else f'{i:0{width}d}'))
        return names, imgs
    from alignjax.data import decode_image
    files, roots = [], []
    for s in sources:
        fs = list_image_files(s)
        files += fs
        roots += [Path(s)] * len(fs)
    if max_images is not None:
        files, roots = files[:max_images], roots[:max_images]
    imgs = np.stack([decode_image(str(f), resolution) for f in files])
    return _names_for(files, roots), imgs


def to_float(images) -> np.ndarray:
    """uint8 [N, H, W, C] -> float32 in [-1, 1]."""
    return np.asarray(images, np.float32) / 127.5 - 1.0
