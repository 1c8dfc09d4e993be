"""Vectorised 2-D rasterisation with signed distances.

Coordinates are resolution-free: the image spans ``[-1, 1]`` in both axes,
``u`` to the right and ``v`` downwards. Shapes are given as (approximate)
signed distance fields in those units, negative inside; coverage is
``clip(0.5 - d / pixel, 0, 1)``, i.e. analytic anti-aliasing whose width is
one output pixel at any resolution. Per-image parameters are arrays of shape
``[N, 1, 1]`` that broadcast against the ``[1, H, W]`` pixel grid.
"""

from __future__ import annotations

import functools

import numpy as np

from alignjax.data.procedural._factors import hash_uniform

f32 = np.float32
EPS = f32(1e-6)


def col(x) -> np.ndarray:
    """Per-image scalar ``[N]`` -> ``[N, 1, 1]`` float32."""
    return np.asarray(x, f32).reshape(-1, 1, 1)


def rgb(c) -> np.ndarray:
    """Colour(s) ``[3]`` or ``[N, 3]`` in 0..255 -> ``[N|1, 1, 1, 3]`` in 0..1."""
    c = np.asarray(c, f32) / f32(255)
    return c.reshape(-1, 1, 1, 3)


def lerp(a, b, t):
    return a + (b - a) * t


def smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


def palette(stops: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Piecewise-linear colour ramp: ``stops [K, 3]`` (0..255), ``t [N]`` in [0, 1] -> ``[N, 3]``."""
    stops = np.asarray(stops, f32)
    k = len(stops) - 1
    x = np.clip(np.asarray(t, f32), 0, 1) * k
    i = np.minimum(x.astype(np.int64), k - 1)
    w = (x - i)[:, None]
    return stops[i] * (1 - w) + stops[i + 1] * w


def hsv_to_rgb(h, s, v) -> np.ndarray:
    """Vectorised HSV (each ``[N]`` in [0, 1]) -> ``[N, 3]`` in 0..255."""
    h = np.asarray(h, f32) % 1.0
    s, v = np.asarray(s, f32), np.asarray(v, f32)
    i = np.floor(h * 6).astype(np.int64) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], 0)
    return table[i, np.arange(len(h))] * 255


class Canvas:
    """A batch of ``N`` RGB images (float, 0..1) with a class mask."""

    def __init__(self, n: int, res: int):
        self.n, self.res = n, res
        self.px = f32(2.0 / res)  # one pixel in normalised units
        c = (np.arange(res, dtype=f32) + f32(0.5)) * self.px - f32(1)
        self.u = c[None, None, :]  # [1, 1, W]
        self.v = c[None, :, None]  # [1, H, 1]
        self.img = np.zeros((n, res, res, 3), f32)
        self.mask = np.zeros((n, res, res), np.uint8)

    def window(self, u0, u1, v0, v1) -> Canvas:
        """A view of the pixels inside ``[u0, u1] x [v0, v1]`` (normalised units).

        Painting into the window paints into this canvas; used to evaluate
        small parts on the pixels they can touch only.
        """

        def idx(a, lo):
            x = (a + 1) / self.px
            return int(np.clip(np.floor(x) if lo else np.ceil(x), 0, self.res))

        c0, c1 = idx(u0, True), idx(u1, False)
        r0, r1 = idx(v0, True), idx(v1, False)
        sub = Canvas.__new__(Canvas)
        sub.n, sub.res, sub.px = self.n, self.res, self.px
        sub.u = self.u[:, :, c0:c1]
        sub.v = self.v[:, r0:r1, :]
        sub.img = self.img[:, r0:r1, c0:c1]
        sub.mask = self.mask[:, r0:r1, c0:c1]
        sub.rows, sub.cols = slice(r0, r1), slice(c0, c1)
        return sub

    def crop(self, arr):
        """Cut a full-canvas ``[N, H, W]`` array to this window (identity on the full canvas)."""
        rows, cols = getattr(self, 'rows', slice(None)), getattr(self, 'cols', slice(None))
        return arr[:, rows, cols]

    # -- coverage -------------------------------------------------------------
    def cov(self, d, soft=0.0) -> np.ndarray:
        """Coverage of the region ``d < 0``; ``soft`` widens the edge (blur)."""
        w = self.px + f32(soft)
        return np.clip(f32(0.5) - d / w, 0, 1).astype(f32, copy=False)

    def stroke(self, d, width, min_px=1.0) -> np.ndarray:
        """Coverage of the band ``|d| < width / 2`` (at least ``min_px`` pixels wide)."""
        half = np.maximum(f32(width) * f32(0.5), f32(min_px) * self.px * f32(0.5))
        return self.cov(np.abs(d) - half)

    # -- compositing -----------------------------------------------------------
    def paint(self, alpha, color, cls=None, mask_alpha=None):
        """Alpha-composite ``color`` (``[N|1, H|1, W|1, 3]``) with ``alpha`` ``[N, H, W]``.

        ``cls`` (int) is written into the mask where ``mask_alpha`` (default
        ``alpha``) is at least 0.5. Work is limited to the bounding box of
        non-zero ``alpha`` over the batch (most parts are small).
        """
        alpha = np.broadcast_to(alpha, self.mask.shape)
        prof = alpha.max(0)
        rows = np.flatnonzero(prof.max(1) > 0)
        if rows.size:
            cols = np.flatnonzero(prof.max(0) > 0)
            sl = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            a = alpha[sl][..., None]
            c = np.asarray(color, f32)
            if c.ndim == 4:
                c = c[:, sl[1] if c.shape[1] > 1 else slice(None), sl[2] if c.shape[2] > 1 else slice(None)]
            img = self.img[sl]
            tmp = c - img
            tmp *= a
            img += tmp
        if cls is not None:
            m = (alpha if mask_alpha is None else mask_alpha) >= 0.5
            self.mask[np.broadcast_to(m, self.mask.shape)] = cls

    def label(self, alpha, cls):
        """Write ``cls`` into the mask where ``alpha >= 0.5`` without painting."""
        self.mask[np.broadcast_to(alpha >= 0.5, self.mask.shape)] = cls

    def shade(self, factor, alpha=None):
        """Multiply colours by ``factor`` (``[N, H, W]``), optionally only where ``alpha``."""
        f = factor if alpha is None else 1 + (factor - 1) * alpha
        f = np.broadcast_to(f, self.mask.shape)
        prof = np.abs(f - 1).max(0)
        rows = np.flatnonzero(prof.max(1) > 0)
        if rows.size:  # only the box where something changes
            cols = np.flatnonzero(prof.max(0) > 0)
            sl = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            self.img[sl] *= f[sl][..., None]

    def add(self, amount, color, alpha=None):
        """Additive light: ``img += amount * color``."""
        a = amount if alpha is None else amount * alpha
        self.img += a[..., None] * color

    def to_uint8(self) -> np.ndarray:
        return (np.clip(self.img, 0, 1) * 255 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------
# Signed distance functions (normalised units, negative inside).


def sd_ellipse(x, y, rx, ry):
    """Approximate distance to an axis-aligned ellipse centred at 0 (first-order)."""
    nx, ny = x / rx, y / ry
    k = np.sqrt(nx * nx + ny * ny)
    gx, gy = nx / rx, ny / ry
    g = np.sqrt(gx * gx + gy * gy) + EPS
    return (k - 1) * k / g


def sd_circle(x, y, r):
    return np.sqrt(x * x + y * y) - r


def sd_box(x, y, hx, hy, r=0.0):
    """Rounded box with half sizes ``hx, hy`` and corner radius ``r``."""
    qx = np.abs(x) - hx + r
    qy = np.abs(y) - hy + r
    out = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return out + np.minimum(np.maximum(qx, qy), 0) - r


def sd_segment(x, y, ax, ay, bx, by):
    """Distance to the segment a-b, and the position ``t`` in [0, 1] along it."""
    pax, pay = x - ax, y - ay
    bax, bay = bx - ax, by - ay
    t = np.clip((pax * bax + pay * bay) / (bax * bax + bay * bay + EPS), 0, 1)
    dx, dy = pax - bax * t, pay - bay * t
    return np.sqrt(dx * dx + dy * dy), t


def sd_tapered(x, y, ax, ay, bx, by, ra, rb):
    """Capsule from a (radius ``ra``) to b (radius ``rb``), linearly tapered."""
    d, t = sd_segment(x, y, ax, ay, bx, by)
    return d - (ra + (rb - ra) * t)


def sd_convex(x, y, pts):
    """Convex polygon from a list of per-image vertices ``(px, py)`` in either
    winding order. Returns the max of edge distances (exact inside, a slight
    underestimate near corners outside)."""
    d = None
    k = len(pts)
    area = 0.0
    for i in range(k):
        ax, ay = pts[i]
        bx, by = pts[(i + 1) % k]
        area = area + (ax * by - bx * ay)
    sgn = np.where(np.asarray(area) >= 0, f32(1), f32(-1))
    for i in range(k):
        ax, ay = pts[i]
        bx, by = pts[(i + 1) % k]
        ex, ey = bx - ax, by - ay
        ln = np.sqrt(ex * ex + ey * ey) + EPS
        # outward normal for this winding (screen coords): (ey, -ex) / len
        di = sgn * ((x - ax) * ey - (y - ay) * ex) / ln
        d = di if d is None else np.maximum(d, di)
    # bound by the vertices' box: with a (near) zero-length edge the half-planes
    # alone would leave an edge-on face as an unbounded line
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    box = np.maximum(
        np.maximum(functools.reduce(np.minimum, xs) - x, x - functools.reduce(np.maximum, xs)),
        np.maximum(functools.reduce(np.minimum, ys) - y, y - functools.reduce(np.maximum, ys)),
    )
    d = np.maximum(d, box)
    return np.where(np.abs(area) < 1e-6, f32(9), d)


def sd_curve(x, y, a, c, half_len, thick):
    """Stroke of the parabola ``y = c * x^2 + a * x`` for ``|x| <= half_len``.

    In local coordinates (the caller translates/rotates). Round caps.
    """
    xc = np.clip(x, -half_len, half_len)
    yc = c * xc * xc + a * xc
    slope = 2 * c * xc + a
    dy = (y - yc) / np.sqrt(1 + slope * slope)
    dx = x - xc
    return np.sqrt(dx * dx + dy * dy) - thick


# ----------------------------------------------------------------------------
# Noise


def _lattice(key, shape, stream):
    n = len(key)
    idx = np.arange(int(np.prod(shape)), dtype=np.int64).reshape((1,) + tuple(shape))
    k = np.asarray(key, np.int64).reshape((n,) + (1,) * len(shape))
    return hash_uniform(k, idx, np.int64(stream)).astype(f32) * 2 - 1


def _interp_matrix(x, g, periodic):
    """Weights ``[..., L, g]`` that interpolate a lattice of ``g`` nodes (smoothstep)."""
    x0 = np.floor(x)
    t = x - x0
    t = t * t * (3 - 2 * t)
    i0 = x0.astype(np.int32)
    if periodic:
        i0 = i0 % g
        i1 = (i0 + 1) % g
    else:
        i0 = np.clip(i0, 0, g - 2)
        i1 = i0 + 1
    nodes = np.arange(g, dtype=np.int32)
    return (i0[..., None] == nodes) * (1 - t)[..., None] + (i1[..., None] == nodes) * t[..., None]


def value_noise(key: np.ndarray, x, y, freq: int, stream: int) -> np.ndarray:
    """Smooth value noise in [-1, 1], separable coordinates.

    ``key`` is ``[N]`` (one lattice per image). ``x`` varies along columns only
    (broadcastable to ``[N, 1, W]``), ``y`` along rows only (``[N, H, 1]``);
    both in [0, 1] and scaled by ``freq`` onto the lattice. Evaluated as two
    small matrix products, so it costs little more than a copy.
    """
    g = freq + 2
    lat = _lattice(key, (g, g), stream)  # [N, gy, gx]
    x = np.asarray(x, f32)
    y = np.asarray(y, f32)
    wx = _interp_matrix(x.reshape(x.shape[0], -1) * f32(freq), g, False).astype(f32)  # [N|1, W, g]
    wy = _interp_matrix(y.reshape(y.shape[0], -1) * f32(freq), g, False).astype(f32)  # [N|1, H, g]
    out = np.matmul(wy, lat)  # [N, H, gx]
    return np.matmul(out, np.swapaxes(wx, 1, 2))  # [N, H, W]


def angular_noise(key: np.ndarray, t, period: int, stream: int) -> np.ndarray:
    """Periodic 1-D value noise in [-1, 1] of ``t`` (any shape ``[N, ...]``, period 1)."""
    n = len(key)
    lat = _lattice(key, (period,), stream)  # [N, P]
    t = np.asarray(t, f32) * f32(period)
    t = np.broadcast_to(t, (n,) + t.shape[1:])
    x0 = np.floor(t)
    w = t - x0
    w = w * w * (3 - 2 * w)
    i0 = x0.astype(np.int32) % period
    i1 = (i0 + 1) % period
    off = (np.arange(n, dtype=np.int32) * period).reshape((n,) + (1,) * (t.ndim - 1))
    flat = lat.reshape(-1)
    a = np.take(flat, i0 + off)
    b = np.take(flat, i1 + off)
    return a + (b - a) * w


def fbm(key, x, y, freq, octaves, stream, gain=0.5):
    """Fractal sum of :func:`value_noise` (roughly in [-1, 1])."""
    total, amp, norm = 0.0, 1.0, 0.0
    for o in range(octaves):
        total = total + amp * value_noise(key, x, y, freq * (2**o), stream + 17 * o)
        norm += amp
        amp *= gain
    return total / f32(norm)
