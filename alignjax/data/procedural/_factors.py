"""The shared factor vector and counter-based randomness.

Every random number in the benchmark is a pure function of integers (seed,
image index, stream id, ...) through a splitmix64 hash, evaluated with numpy
uint64 arithmetic. So image ``i`` of seed ``s`` needs no state and no loop over
the images before it, and factors are identical for every domain: index ``i``
of ``proc:faces?seed=s`` and of ``proc:animals?seed=s`` are an aligned pair.
"""

from __future__ import annotations

import numpy as np

# name, low, high, meaning. The order is the column order of factor arrays.
_FACTORS = (
    ('yaw', -1.0, 1.0, 'head turn, -1..1 maps to -34..+34 degrees (+: towards image right)'),
    ('pitch', -1.0, 1.0, 'head nod, -1..1 maps to -20..+20 degrees (+: looking down)'),
    ('scale', 0.85, 1.15, 'head size relative to the canonical framing'),
    ('aspect', 0.85, 1.15, 'head width/height relative to canonical (>1: wider)'),
    ('pos_x', -0.08, 0.08, 'horizontal offset of the head, in half image widths'),
    ('pos_y', -0.06, 0.06, 'vertical offset of the head, in half image heights (+: down)'),
    ('smile', -1.0, 1.0, 'mouth curvature: -1 frown, 0 neutral, 1 open smile'),
    ('eye_open', 0.0, 1.0, 'eye openness: 0 nearly closed, 1 wide open'),
    ('brow', -1.0, 1.0, 'eyebrows: -1 lowered and slanted (angry), 1 raised (surprised)'),
    ('skin_tone', 0.0, 1.0, 'skin (faces, toons) / fur (animals) / wall (buildings): light to dark'),
    ('hair_color', 0.0, 1.0, 'hair / fur patches / roof: platinum, blond, red, brown, black'),
    ('hair_length', 0.0, 1.0, 'hair length (faces, toons); ear droop (animals); building depth'),
    ('bg_hue', 0.0, 1.0, 'background (sky) hue, cyclic'),
    ('bg_value', 0.0, 1.0, 'background brightness: dark to light'),
    ('light_x', -1.0, 1.0, 'key light direction, horizontal (+: from image right)'),
    ('light_y', -1.0, 0.4, 'key light direction, vertical (-1: from above, +: from below)'),
    ('glasses', 0.0, 1.0, 'binary: glasses (faces, toons), tower (buildings); never on animals'),
    ('detail', 0.0, 1.0, 'nuisance seed: iris and clothing colour, texture noise'),
)

FACTOR_NAMES: tuple[str, ...] = tuple(f[0] for f in _FACTORS)
FACTOR_RANGES: dict[str, tuple[float, float]] = {f[0]: (f[1], f[2]) for f in _FACTORS}
FACTOR_DOCS: dict[str, str] = {f[0]: f[3] for f in _FACTORS}
NUM_FACTORS = len(FACTOR_NAMES)
F = {name: k for k, name in enumerate(FACTOR_NAMES)}  # column index by name

_LO = np.array([f[1] for f in _FACTORS], np.float32)
_HI = np.array([f[2] for f in _FACTORS], np.float32)

# --------------------------------------------------------------------------
# Counter-based hashing (splitmix64).

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.uint64)
    with np.errstate(over='ignore'):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def hash_ints(*keys) -> np.ndarray:
    """Hash broadcastable integer arrays into uint64."""
    h = np.uint64(0x243F6A8885A308D3)
    with np.errstate(over='ignore'):
        for k in keys:
            k = np.asarray(k)
            if k.dtype != np.uint64:
                k = k.astype(np.int64).astype(np.uint64)
            h = mix64(h ^ (k + _GOLD))
    return h


def hash_uniform(*keys) -> np.ndarray:
    """Uniform float64 in [0, 1) from integer keys."""
    return (hash_ints(*keys) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


# --------------------------------------------------------------------------
# Sampling


def sample_factors(seed: int, n: int | None = None, *, start: int = 0, indices=None) -> np.ndarray:
    """Factor vectors ``float32 [n, NUM_FACTORS]`` for images ``start..start+n-1``.

    Row ``k`` depends only on ``(seed, index)``, never on ``n``: sampling
    ``indices=[7]`` gives the same row as row 7 of ``sample_factors(seed, 100)``.
    Distributions (within :data:`FACTOR_RANGES`): uniform, except ``yaw`` and
    ``pitch`` (triangular, most heads near frontal), ``eye_open`` (skewed open),
    ``smile`` (mild more often than extreme) and ``glasses`` (1 with
    probability 0.25).
    """
    if indices is None:
        if n is None:
            raise ValueError('give n or indices')
        indices = np.arange(start, start + n, dtype=np.int64)
    idx = np.asarray(indices, np.int64).reshape(-1)
    cols = np.arange(NUM_FACTORS, dtype=np.int64)
    u = hash_uniform(np.int64(seed), idx[:, None], cols[None, :], np.int64(0xFAC7))
    u2 = hash_uniform(np.int64(seed), idx[:, None], cols[None, :], np.int64(0xFAC8))
    out = u.copy()
    tri = (u + u2) * 0.5  # triangular on [0, 1], peak at 0.5
    for name in ('yaw', 'pitch'):
        out[:, F[name]] = tri[:, F[name]]
    sm = F['smile']
    out[:, sm] = 0.5 + 0.5 * np.sign(u[:, sm] - 0.5) * np.abs(2 * u[:, sm] - 1) ** 1.3
    eo = F['eye_open']
    out[:, eo] = 1.0 - (1.0 - u[:, eo]) ** 1.8  # skew towards open
    out[:, F['glasses']] = (u[:, F['glasses']] < 0.25).astype(np.float64)
    f = _LO + (_HI - _LO) * out.astype(np.float32)
    g = F['glasses']
    f[:, g] = out[:, g]
    return f.astype(np.float32)


def as_factor_array(factors) -> np.ndarray:
    """Accept ``[n, F]`` / ``[F]`` arrays or a dict of per-factor arrays/scalars.

    Missing dict entries take the middle of their range (glasses: 0).
    """
    if isinstance(factors, dict):
        unknown = set(factors) - set(FACTOR_NAMES)
        if unknown:
            raise ValueError(f'unknown factor(s) {sorted(unknown)}; known: {FACTOR_NAMES}')
        n = max((np.size(v) for v in factors.values()), default=1)
        out = np.tile(((_LO + _HI) / 2)[None], (n, 1))
        out[:, F['glasses']] = 0
        for k, v in factors.items():
            out[:, F[k]] = np.broadcast_to(np.asarray(v, np.float32).reshape(-1), (n,))
        return out.astype(np.float32)
    arr = np.asarray(factors, np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != NUM_FACTORS:
        raise ValueError(f'factors must be [n, {NUM_FACTORS}], got shape {arr.shape}')
    return arr


def factors_to_dict(factors) -> dict[str, np.ndarray]:
    arr = as_factor_array(factors)
    return {name: arr[:, k] for k, name in enumerate(FACTOR_NAMES)}


def normalize_factors(factors) -> np.ndarray:
    """Map factors to [-1, 1] (for use as conditioning labels)."""
    arr = as_factor_array(factors)
    return ((arr - _LO) / (_HI - _LO) * 2 - 1).astype(np.float32)
