"""Procedural aligned domains with ground truth.

Four domains are rendered from one shared factor vector (see
:data:`FACTOR_NAMES`, :data:`FACTOR_RANGES`, :data:`FACTOR_DOCS`):

* ``faces``: the parent. Smooth shading, soft shadows, highlights, mild texture.
* ``toons``: close child. Flat cel-shaded colours, dark outlines, enlarged eyes.
* ``animals``: far child. Ears whose droop follows hair length, muzzle and
  nose, fur texture; glasses never appear (a "forgotten" attribute).
* ``buildings``: distant child. A house (church when ``glasses``) whose view
  follows yaw/pitch and whose colours follow skin/hair/background.

:func:`render` is a pure, vectorised function of ``(domain, factors,
resolution)``; :func:`sample_factors` is a pure function of ``(seed, index)``.
Each render returns the image, landmarks (pixel ``xy``, pixel centres at
integer coordinates, so ``mask[round(y), round(x)]`` is the pixel a landmark
falls in), their visibility, and a segmentation mask whose classes are
:data:`MASK_CLASSES` ``[domain]``. ``left``/``right`` in landmark names mean
image left/right.

Resolutions 16..256 (any size works; below 64 the renderer supersamples 2x).
"""

from __future__ import annotations

import numpy as np

from alignjax.data.procedural import _raster
from alignjax.data.procedural._buildings import BUILDING_CLASSES, BUILDING_LANDMARKS, paint_buildings
from alignjax.data.procedural._factors import (
    FACTOR_DOCS,
    FACTOR_NAMES,
    FACTOR_RANGES,
    NUM_FACTORS,
    as_factor_array,
    factors_to_dict,
    hash_ints,
    normalize_factors,
    sample_factors,
)
from alignjax.data.procedural._heads import (
    ANIMAL_LANDMARKS,
    FACE_LANDMARKS,
    HEAD_CLASSES,
    paint_head_domain,
)
from alignjax.data.procedural._heads import (
    landmarks as _head_landmarks,
)

__all__ = [
    'DOMAINS',
    'FACTOR_DOCS',
    'FACTOR_NAMES',
    'FACTOR_RANGES',
    'LANDMARK_NAMES',
    'MASK_CLASSES',
    'NUM_FACTORS',
    'factors_to_dict',
    'flip_annotations',
    'normalize_factors',
    'render',
    'sample_factors',
]

DOMAINS = ('faces', 'toons', 'animals', 'buildings')

LANDMARK_NAMES: dict[str, tuple[str, ...]] = {
    'faces': FACE_LANDMARKS,
    'toons': FACE_LANDMARKS,
    'animals': ANIMAL_LANDMARKS,
    'buildings': BUILDING_LANDMARKS,
}

_ANIMAL_CLASSES = tuple('fur' if c == 'skin' else c for c in HEAD_CLASSES)
MASK_CLASSES: dict[str, tuple[str, ...]] = {
    'faces': HEAD_CLASSES,
    'toons': HEAD_CLASSES,
    'animals': _ANIMAL_CLASSES,  # same indices as faces; 'glasses' never occurs
    'buildings': BUILDING_CLASSES,
}

_DOMAIN_IDS = {d: k + 1 for k, d in enumerate(DOMAINS)}
_CHUNK_PIXELS = 1 << 17


def _keys(fac: np.ndarray, domain: str) -> np.ndarray:
    """Per-image nuisance key: a hash of the ``detail`` factor (so sweeping any
    other factor leaves textures and clothing untouched) and the domain."""
    bits = np.ascontiguousarray(fac[:, FACTOR_NAMES.index('detail')], np.float32).view(np.uint32)
    return hash_ints(bits.astype(np.int64), np.int64(_DOMAIN_IDS[domain])).astype(np.int64)


def _downsample(cv: _raster.Canvas, ss: int, n_classes: int):
    n, r = cv.n, cv.res // ss
    img = cv.img.reshape(n, r, ss, r, ss, 3).mean((2, 4))
    m = cv.mask.reshape(n, r, ss, r, ss).transpose(0, 1, 3, 2, 4).reshape(n, r, r, ss * ss)
    counts = np.stack([(m == c).sum(-1) for c in range(n_classes)], -1)
    # ties go to the higher class (parts are drawn over the background)
    mask = (n_classes - 1 - np.argmax(counts[..., ::-1], -1)).astype(np.uint8)
    return img, mask


def render(
    domain: str,
    factors,
    resolution: int,
    *,
    supersample: int | None = None,
    outputs=('image', 'landmarks', 'visible', 'mask', 'factors'),
) -> dict[str, np.ndarray]:
    """Render images of ``domain`` from ``factors``.

    Args:
      domain: one of :data:`DOMAINS`.
      factors: ``[N, NUM_FACTORS]`` / ``[NUM_FACTORS]`` array (see
        :func:`sample_factors`) or a dict ``{name: value(s)}`` (missing names
        take mid-range values).
      resolution: output size ``R`` (images are ``R x R``).
      supersample: internal oversampling factor (default 2 below 64, else 1).
      outputs: which entries to return (``image`` alone is cheapest).

    Returns a dict with ``image`` uint8 ``[N, R, R, 3]``, ``landmarks``
    float32 ``[N, K, 2]`` (pixel ``xy``), ``visible`` bool ``[N, K]``
    (inside the image and not hidden, e.g. no tower), ``mask`` uint8
    ``[N, R, R]`` (indices into ``MASK_CLASSES[domain]``), ``factors``
    float32 ``[N, F]``.
    """
    if domain not in DOMAINS:
        raise ValueError(f'unknown domain {domain!r}; choose from {DOMAINS}')
    resolution = int(resolution)
    if resolution < 4:
        raise ValueError(f'resolution must be at least 4, got {resolution}')
    fac = as_factor_array(factors)
    n = len(fac)
    ss = int(supersample) if supersample else (2 if resolution < 64 else 1)
    res = resolution * ss
    n_classes = len(MASK_CLASSES[domain])
    want = set(outputs)
    out_img = np.empty((n, resolution, resolution, 3), np.uint8) if 'image' in want else None
    out_mask = np.empty((n, resolution, resolution), np.uint8) if 'mask' in want else None
    lms, viss = [], []
    step = max(1, _CHUNK_PIXELS // (res * res))
    for s in range(0, n, step):
        f = fac[s : s + step]
        key = _keys(f, domain)
        cv = _raster.Canvas(len(f), res)
        if domain == 'buildings':
            res_b = paint_buildings(cv, f, key)
            lm, vis = res_b.landmarks, res_b.visible
        else:
            g = paint_head_domain(cv, f, domain, key)
            lm, vis = _head_landmarks(g, domain)
        if ss > 1:
            img, mask = _downsample(cv, ss, n_classes)
        else:
            img, mask = cv.img, cv.mask
        if out_img is not None:
            out_img[s : s + len(f)] = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
        if out_mask is not None:
            out_mask[s : s + len(f)] = mask
        # normalised [-1, 1] -> pixel xy with pixel centres at integers
        lm_px = (lm + 1) * 0.5 * resolution - 0.5
        inside = np.all((lm_px >= -0.5) & (lm_px <= resolution - 0.5), -1)
        lms.append(lm_px.astype(np.float32))
        viss.append(vis & inside)
    out: dict[str, np.ndarray] = {}
    if out_img is not None:
        out['image'] = out_img
    if 'landmarks' in want:
        out['landmarks'] = np.concatenate(lms, 0)
    if 'visible' in want:
        out['visible'] = np.concatenate(viss, 0)
    if out_mask is not None:
        out['mask'] = out_mask
    if 'factors' in want:
        out['factors'] = fac.copy()
    return out


def _swap_pairs(names):
    perm = list(range(len(names)))
    for i, nm in enumerate(names):
        for a, b in (('left', 'right'), ('right', 'left')):
            if a in nm:
                j = names.index(nm.replace(a, b))
                perm[i] = j
    return perm


def flip_annotations(domain: str, ann: dict[str, np.ndarray], where=None) -> dict[str, np.ndarray]:
    """Mirror rendered annotations horizontally (for x-flipped dataset items).

    Images and masks are flipped, landmark ``x`` becomes ``R - 1 - x`` and
    left/right landmark names swap, so ``eye_left`` stays the image-left eye.
    ``where`` (bool ``[N]``) limits the flip to some items. Factors are kept
    (they describe the unflipped scene).
    """
    out = dict(ann)
    n = len(next(iter(ann.values())))
    where = np.ones(n, bool) if where is None else np.asarray(where, bool)
    perm = _swap_pairs(list(LANDMARK_NAMES[domain]))
    for k in ('image', 'mask'):
        if k in ann:
            a = ann[k].copy()
            a[where] = a[where][:, :, ::-1]
            out[k] = a
    if 'landmarks' in ann:
        lm = ann['landmarks'].copy()
        res = (ann['image'] if 'image' in ann else ann['mask']).shape[2]
        fl = lm[where][:, perm]
        fl[..., 0] = res - 1 - fl[..., 0]
        lm[where] = fl
        out['landmarks'] = lm
    if 'visible' in ann:
        vis = ann['visible'].copy()
        vis[where] = vis[where][:, perm]
        out['visible'] = vis
    return out
