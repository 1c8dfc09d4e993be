"""Load images to invert: files, folders or a dataset spec, centre-cropped and resized to the generator's size.

    names, images = load_images(['a.jpg', 'photos/'], 256)          # uint8 [N, 256, 256, 3]
    names, images = load_images('proc:faces?n=8', 64)                 # through alignjax.data.make_dataset
    inp = read_inputs(['photos/'], 256, bad='skip')                   # + sources, skipped files, warnings

Files and folders go through `alignjax.data.decode_image` (EXIF orientation, any PIL mode to RGB, largest
centred square, Lanczos resize); folders are listed like `folder:` datasets (links followed once). Names are
file stems, Unicode kept ('猫.jpg' -> '猫'; only characters unsafe in file names become '_'), folder-relative
paths joined with '__' when they would clash; dataset items are named by index. `read_inputs` also returns
each name's source path, the bad files skipped under bad='skip' and a warning for every image whose centre
square is upsampled more than `UPSAMPLE_WARN` times (a 1x1 or 10000x10 photo makes a meaningless target).
"""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from alignjax.errors import InputError

_SPEC = re.compile(r'^(folder|zip|tfds|proc):')
UPSAMPLE_WARN = 4.0  # warn when an image's centre square is enlarged more than this
_NAME_BYTES = 150  # names (file stems of the outputs) are cut to this many UTF-8 bytes


def _image_exts():
    from alignjax.data._image import IMAGE_EXTENSIONS

    return {e.lower() for e in IMAGE_EXTENSIONS}


def _safe(name: str) -> str:
    """A file-name-safe label that keeps letters and digits of every script (NFC-normalised)."""
    name = unicodedata.normalize('NFC', name)
    name = re.sub(r'[^\w.+-]+', '_', name).strip('._') or 'image'
    raw = name.encode('utf-8')
    if len(raw) > _NAME_BYTES:
        name = raw[:_NAME_BYTES].decode('utf-8', 'ignore').rstrip('._') or 'image'
    return name


def list_image_files(path) -> list[Path]:
    from alignjax.data._image import describe_extensions
    from alignjax.data.sources import walk_files

    p = Path(path)
    exts = _image_exts()
    if p.is_dir():
        files = [p / rel for rel in walk_files(str(p)) if Path(rel).suffix.lower() in exts]
        if not files:
            raise FileNotFoundError(f'{p}: no images found (looked for {describe_extensions()})')
        return files
    if p.is_file():
        return [p]
    if p.is_symlink():
        raise FileNotFoundError(f'{p}: broken symbolic link')
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


@dataclasses.dataclass
class Inputs:
    names: list  # output labels, unique
    images: np.ndarray  # uint8 [N, R, R, 3]
    sources: list  # where each image came from (path, or the dataset item)
    skipped: dict  # {path: reason} bad files left out (bad='skip')
    warnings: list  # e.g. tiny images upsampled many times


def _upsample_warning(where: str, size, resolution: int) -> str | None:
    w, h = size
    side = max(1, min(w, h))
    factor = resolution / side
    if factor <= UPSAMPLE_WARN:
        return None
    crop = f'its centre {side}x{side} square' if w != h else 'it'
    return (
        f'{where} is {w}x{h}: {crop} is upsampled {factor:.0f}x to {resolution}x{resolution}, '
        f'so the target is mostly interpolation'
    )


def read_inputs(sources, resolution: int, max_images: int | None = None, *, bad: str = 'fail') -> Inputs:
    """Images from a path, a list of paths, or one dataset spec ('folder:', 'zip:', 'tfds:', 'proc:' prefixes
    or an NVlabs *.zip). bad: 'fail' raises `BadImageError` on the first unreadable image; 'skip' leaves it out
    and records it in `skipped`. `max_images` counts good images."""
    from alignjax.data import EmptyDatasetError, decode_image
    from alignjax.data._image import BadImageError, probe_image

    if bad not in ('fail', 'skip'):
        raise InputError(f"bad must be 'fail' or 'skip', got {bad!r}")
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = [os.fspath(s) for s in sources]
    if len(sources) == 1 and (_SPEC.match(sources[0]) or sources[0].lower().endswith('.zip')):
        from alignjax.data import make_dataset

        ds = make_dataset(sources[0], resolution, max_images=max_images, bad_file_policy=bad)
        n = len(ds)
        imgs = np.stack([np.asarray(ds[i]['image'], np.uint8) for i in range(n)])
        width = max(5, len(str(n - 1)))
        names, where = [], []
        for i in range(n):
            d = ds.describe(i)
            where.append(d)
            stem = Path(d.split(':')[-1]).stem if ('/' in d or '.' in d) and not d.endswith(']') else ''
            names.append(_safe(f'{i:0{width}d}_{stem}' if stem else f'{i:0{width}d}'))
        return Inputs(names, imgs, where, dict(ds.bad_reasons), [])
    files, roots = [], []
    for s in sources:
        fs = list_image_files(s)
        files += fs
        roots += [Path(s)] * len(fs)
    good, good_roots, imgs, skipped, warnings = [], [], [], {}, []
    for f, root in zip(files, roots):
        if max_images is not None and len(imgs) >= max_images:
            break
        try:
            size = probe_image(str(f))
            imgs.append(decode_image(str(f), resolution))
        except BadImageError as e:
            if bad == 'fail':
                raise
            skipped[str(f)] = e.reason
            continue
        good.append(f)
        good_roots.append(root)
        msg = _upsample_warning(str(f), size, resolution)
        if msg:
            warnings.append(msg)
    if not imgs:
        raise EmptyDatasetError(
            f'none of the {len(files)} image file(s) could be read' if skipped else 'no images given'
        )
    return Inputs(_names_for(good, good_roots), np.stack(imgs), [str(f) for f in good], skipped, warnings)


def load_images(
    sources, resolution: int, max_images: int | None = None, *, bad: str = 'fail'
) -> tuple[list[str], np.ndarray]:
    """(names, uint8 [N, R, R, 3]) from a path, a list of paths, or one dataset spec
    ('folder:', 'zip:', 'tfds:', 'proc:' prefixes or an NVlabs *.zip). See `read_inputs`."""
    r = read_inputs(sources, resolution, max_images, bad=bad)
    return r.names, r.images


def to_float(images) -> np.ndarray:
    """uint8 [N, H, W, C] -> float32 in [-1, 1]."""
    return np.asarray(images, np.float32) / 127.5 - 1.0
