"""Ground-truth renders for training and scoring the evaluators, and the degradations GAN samples show.

Seeds: evaluators train on `TRAIN_SEED` renders and are scored on `EVAL_SEED` renders (two independent
counter-based streams, so no evaluation image is ever a training image; the zoo's GANs train on seed 0).

`RenderPool` serves training batches drawn from a pool of renders that is refreshed on the fly: every
`refresh_every` steps the oldest chunk of `chunk` images is replaced by a chunk of new indices (rendered in a
background thread while training runs). The pool's content and every batch are pure functions of
(seed, step), so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import concurrent.futures
import io

import numpy as np

from alignjax.data import procedural as P

TRAIN_SEED = 101
EVAL_SEED = 202


def render_set(domain: str, resolution: int, seed: int, start: int, n: int) -> dict[str, np.ndarray]:
    """Renders of indices [start, start + n) of `seed`: image uint8 [n, R, R, 3], landmarks [n, K, 2],
    visible bool [n, K], mask uint8 [n, R, R], factors [n, 18]."""
    f = P.sample_factors(seed, n, start=start)
    return P.render(domain, f, resolution)


def jpeg(images: np.ndarray, quality) -> np.ndarray:
    """JPEG round trip of uint8 [N, H, W, 3] images at `quality` (scalar or [N])."""
    from PIL import Image

    q = np.broadcast_to(np.asarray(quality, np.int64), (len(images),))
    out = np.empty_like(images)
    for i, im in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format='JPEG', quality=int(q[i]))
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert('RGB'))
    return out


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (edge-padded) of uint8/float [N, H, W, C] images; returns float32 in the
    input's range."""
    x = np.asarray(images, np.float32)
    if sigma <= 0:
        return x
    r = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    for axis in (1, 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        xp = np.pad(x, pad, mode='edge')
        n = x.shape[axis]
        x = sum(k[j] * np.take(xp, np.arange(j, j + n), axis=axis) for j in range(2 * r + 1))
    return x


def degrade(
    images: np.ndarray, *, blur: float = 0.0, noise: float = 0.0, jpeg_quality: int | None = None, seed: int = 0
) -> np.ndarray:
    """uint8 [N, H, W, 3] -> uint8 after Gaussian blur (sigma px), additive Gaussian noise (std in [0, 255]
    units) and a JPEG round trip, in that order."""
    x = gaussian_blur(images, blur)
    if noise > 0:
        x = x + np.random.RandomState(seed).normal(0, noise, x.shape).astype(np.float32)
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        x = jpeg(x, jpeg_quality)
    return x


def _hash01(seed: int, idx: np.ndarray, stream: int) -> np.ndarray:
    from alignjax.data.procedural._factors import hash_uniform

    return hash_uniform(np.int64(seed), idx.astype(np.int64), np.int64(stream))


class RenderPool:
    """A refreshed pool of training renders (see the module docstring). `batch(step)` -> dict of arrays."""

    KEYS = ('image', 'landmarks', 'visible', 'mask', 'factors')

    def __init__(
        self,
        domain: str,
        resolution: int,
        *,
        seed: int = TRAIN_SEED,
        pool_size: int = 16384,
        chunk: int = 1024,
        refresh_every: int = 64,
        batch_size: int = 64,
        jpeg_frac: float = 0.3,
        jpeg_range=(40, 95),
    ):
        if pool_size % chunk:
            raise ValueError(f'pool_size {pool_size} must be a multiple of chunk {chunk}')
        self.domain, self.resolution, self.seed = domain, int(resolution), int(seed)
        self.slots, self.chunk, self.refresh_every = pool_size // chunk, chunk, int(refresh_every)
        self.batch_size, self.jpeg_frac, self.jpeg_range = int(batch_size), float(jpeg_frac), jpeg_range
        self.pool: dict[str, np.ndarray] | None = None
        self.newest = -1  # index of the newest chunk in the pool
        self._exec = concurrent.futures.ThreadPoolExecutor(1)
        self._pending: dict[int, concurrent.futures.Future] = {}

    def _render_chunk(self, c: int) -> dict[str, np.ndarray]:
        out = render_set(self.domain, self.resolution, self.seed, c * self.chunk, self.chunk)
        idx = np.arange(c * self.chunk, (c + 1) * self.chunk)
        sel = _hash01(self.seed, idx, 0x3E6) < self.jpeg_frac
        if sel.any():
            lo, hi = self.jpeg_range
            q = (lo + _hash01(self.seed, idx, 0x3E7) * (hi - lo + 1)).astype(np.int64)
            out['image'][sel] = jpeg(out['image'][sel], q[sel])
        return {k: out[k] for k in self.KEYS}

    def _chunk(self, c: int):
        fut = self._pending.pop(c, None)
        return fut.result() if fut is not None else self._render_chunk(c)

    def _place(self, c: int, data):
        s = c % self.slots
        for k, v in data.items():
            self.pool[k][s * self.chunk : (s + 1) * self.chunk] = v

    def newest_chunk(self, step: int) -> int:
        return self.slots - 1 + step // self.refresh_every

    def _sync(self, step: int, progress=None):
        want = self.newest_chunk(step)
        if self.pool is None:
            first = max(0, want - self.slots + 1)
            data = [self._render_chunk(c) for c in _progress(range(first, want + 1), progress)]
            self.pool = {k: np.concatenate([d[k] for d in data]) for k in self.KEYS}
            # chunk c lives in slot c % slots: rotate the concatenation into place
            order = np.concatenate(
                [
                    np.arange(c % self.slots * self.chunk, (c % self.slots + 1) * self.chunk)
                    for c in range(first, want + 1)
                ]
            )
            for k in self.KEYS:
                arr = np.empty_like(self.pool[k])
                arr[order] = self.pool[k]
                self.pool[k] = arr
            self.newest = want
        while self.newest < want:
            self.newest += 1
            self._place(self.newest, self._chunk(self.newest))
        nxt = self.newest + 1
        if nxt not in self._pending:
            self._pending[nxt] = self._exec.submit(self._render_chunk, nxt)

    def batch(self, step: int, progress=None) -> dict[str, np.ndarray]:
        """The training batch of `step` (a pure function of seed and step)."""
        self._sync(step, progress)
        rng = np.random.default_rng([self.seed, step, 0xBA7C])
        idx = rng.integers(0, len(self.pool['image']), self.batch_size)
        return {k: v[idx] for k, v in self.pool.items()}

    def close(self):
        self._exec.shutdown(wait=False, cancel_futures=True)


def _progress(it, desc):
    if not desc:
        return it
    from tqdm import tqdm

    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True)
