"""Distances between two sets of features: Fréchet distance, KID, precision/recall.

Semantics follow NVlabs stylegan2-ada-pytorch `metrics/`:

* `FeatureStats` accumulates features batch by batch: all of them (float32, for KID and precision/recall)
  and/or their mean and covariance in float64 on the host (covariance normalised by N, as NVlabs).
* `frechet_distance(mu1, sigma1, mu2, sigma2)`: ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). The trace of
  the matrix square root is computed without scipy as the sum of sqrt(eigvalsh(S1^(1/2) S2 S1^(1/2))) (same
  spectrum as S1 S2, but symmetric positive semi-definite, so `eigh` is exact and never goes complex), in float64.
* `kid(real, gen)`: unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3, averaged over
  `num_subsets` random subsets of min(N_real, N_gen, max_subset_size) features each (NVlabs defaults 100 and 1000).
  Kernel matrices are computed in a jitted float32 program (one subset at a time, `lax.map`), their row sums are
  reduced in float64 on the host.
* `precision_recall(real, gen, k=3)`: Kynkäänniemi et al. 2019. Each set's manifold is the union of balls
  around its points with radius the distance to the k-th nearest neighbour (the (k+1)-th smallest distance,
  counting the point itself); precision is the fraction of generated features inside the real manifold,
  recall the fraction of real features inside the generated one. Distances are computed in jitted blocks of
  `row_batch_size` x `col_batch_size` (a running top-(k+1) over column blocks), so 10k x 10k (or 200k x 50k)
  never materialises the full matrix. Features are centred (a distance-preserving shift) before the
  |a|^2 + |b|^2 - 2ab expansion to keep float32 cancellation small.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    'FeatureStats',
    'frechet_distance',
    'fd_from_features',
    'kid',
    'kid_subsets',
    'precision_recall',
    'knn_radii',
]


# ----------------------------------------------------------------------------------------------------------
# Feature statistics.


class FeatureStats:
    """Accumulates features [B, D] batch by batch (as NVlabs `FeatureStats`).

    capture_all: keep every feature (float32) for `get_all()`; capture_mean_cov: accumulate float64 sums for
    `get_mean_cov()` (shifted by the first batch's mean, so large feature offsets do not cancel). max_items:
    ignore features beyond this many.
    """

    def __init__(self, capture_all: bool = True, capture_mean_cov: bool = True, max_items: int | None = None):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.dim = None
        self._all: list[np.ndarray] = []
        self._shift = self._sum = self._sumsq = None

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x) -> None:
        x = np.asarray(x, np.float32)
        if x.ndim != 2:
            raise ValueError(f'features must be [N, D], got shape {x.shape}')
        if self.dim is None:
            self.dim = x.shape[1]
        elif x.shape[1] != self.dim:
            raise ValueError(f'features have dimension {x.shape[1]}, earlier batches had {self.dim}')
        if self.max_items is not None:
            x = x[: max(self.max_items - self.num_items, 0)]
        if not len(x):
            return
        self.num_items += len(x)
        if self.capture_all:
            self._all.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            if self._shift is None:
                self._shift = x64.mean(0)
                self._sum = np.zeros(self.dim, np.float64)
                self._sumsq = np.zeros((self.dim, self.dim), np.float64)
            x64 -= self._shift
            self._sum += x64.sum(0)
            self._sumsq += x64.T @ x64

    def get_all(self) -> np.ndarray:
        """[N, D] float32."""
        if not self.capture_all:
            raise ValueError('FeatureStats(capture_all=False) keeps no features')
        if not self._all:
            return np.zeros((0, self.dim or 0), np.float32)
        if len(self._all) > 1:
            self._all = [np.concatenate(self._all)]
        return self._all[0]

    def get_mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean [D] float64, covariance [D, D] float64, normalised by N)."""
        if not self.capture_mean_cov:
            return mean_cov(self.get_all())
        if not self.num_items:
            raise ValueError('FeatureStats holds no features')
        d = self._sum / self.num_items
        cov = self._sumsq / self.num_items - np.outer(d, d)
        return self._shift + d, (cov + cov.T) / 2


def mean_cov(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (normalised by N) of features [N, D], in float64."""
    st = FeatureStats(capture_all=False)
    x = np.asarray(x)
    for s in range(0, len(x), 4096):
        st.append(x[s : s + 4096])
    return st.get_mean_cov()


# ----------------------------------------------------------------------------------------------------------
# Fréchet distance.


def _clip_spectrum(w: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix: round-off below D * eps * max(w) (and negatives) -> 0."""
    tol = len(w) * np.finfo(np.float64).eps * max(float(np.max(np.abs(w))), 0.0) if len(w) else 0.0
    return np.where(w > tol, w, 0.0)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(_clip_spectrum(w))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)), in float64 (scipy-free)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(f'mismatched statistics: means {mu1.shape} / {mu2.shape}, covariances {s1.shape} / {s2.shape}')
    r = _sqrt_psd((s1 + s1.T) / 2)
    m = r @ s2 @ r
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(_clip_spectrum(ev)).sum()
    return float(np.square(mu1 - mu2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def fd_from_features(real, gen) -> float:
    """Fréchet distance between feature sets real [N, D] and gen [M, D] (or `FeatureStats`)."""

    def stats(x):
        return x.get_mean_cov() if isinstance(x, FeatureStats) else mean_cov(x)

    return frechet_distance(*stats(real), *stats(gen))


# ----------------------------------------------------------------------------------------------------------
# KID.


@jax.jit
def _kid_row_sums(x_all, y_all, ix, iy):
    """x_all [Nx, D], y_all [Ny, D], ix/iy [S, m] subset indices -> [S, 3, m] row sums of K_xx (off-diagonal),
    K_yy (off-diagonal), K_xy for k(a, b) = (a.b / D + 1)^3."""
    d = x_all.shape[1]

    def one(idx):
        x, y = x_all[idx[0]], y_all[idx[1]]
        k = lambda a, b: (jnp.matmul(a, b.T, precision='highest') / d + 1) ** 3  # noqa: E731
        kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
        return jnp.stack([kxx.sum(1) - jnp.diagonal(kxx), kyy.sum(1) - jnp.diagonal(kyy), kxy.sum(1)])

    return jax.lax.map(one, jnp.stack([ix, iy], axis=1))


def kid_subsets(n_real: int, n_gen: int, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0):
    """The subsets `kid` draws: (real indices [S, m], gen indices [S, m]), without replacement within a subset."""
    m = min(n_real, n_gen, max_subset_size)
    rnd = np.random.RandomState(seed)
    ig, ir = [], []
    for _ in range(num_subsets):
        ig.append(rnd.choice(n_gen, m, replace=False))
        ir.append(rnd.choice(n_real, m, replace=False))
    return np.stack(ir).astype(np.int32), np.stack(ig).astype(np.int32)


def kid(real, gen, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0) -> float:
    """Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel) between real [N, D] and gen [M, D]."""
    real, gen = np.asarray(real, np.float32), np.asarray(gen, np.float32)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f'features must be [N, D] with the same D, got {real.shape} and {gen.shape}')
    ir, ig = kid_subsets(len(real), len(gen), num_subsets, max_subset_size, seed)
    m = ir.shape[1]
    if m < 2:
        raise ValueError(f'KID needs at least 2 features per set, got {len(real)} real and {len(gen)} generated')
    sums = np.asarray(
        _kid_row_sums(jnp.asarray(gen), jnp.asarray(real), jnp.asarray(ig), jnp.asarray(ir)), np.float64
    ).sum(-1)  # [S, 3]
    t = (sums[:, 0] + sums[:, 1]) / (m - 1) - sums[:, 2] * 2 / m
    return float(t.sum() / num_subsets / m)


# ----------------------------------------------------------------------------------------------------------
# Precision / recall.


def _sqdist(a, b, b_sq):
    ab = jnp.matmul(a, b.T, precision='highest')
    return jnp.maximum(jnp.sum(jnp.square(a), 1)[:, None] + b_sq[None, :] - 2 * ab, 0.0)


@functools.partial(jax.jit, static_argnames=('k', 'col_batch'))
def _kth_block(rows, cols, n_cols, k, col_batch):
    """rows [R, D], cols [C, D] (C a multiple of col_batch, the first n_cols valid) -> [R] k-th smallest
    squared distance from each row to the valid cols."""
    r = rows.shape[0]
    cb = cols.reshape(-1, col_batch, cols.shape[1])
    starts = jnp.arange(cb.shape[0]) * col_batch

    def step(best, xs):
        c, start = xs
        d = _sqdist(rows, c, jnp.sum(jnp.square(c), 1))
        d = jnp.where((start + jnp.arange(col_batch) < n_cols)[None, :], d, jnp.inf)
        cand = jnp.concatenate([best, d], axis=1)
        return -jax.lax.top_k(-cand, k)[0], None

    best, _ = jax.lax.scan(step, jnp.full((r, k), jnp.inf, rows.dtype), (cb, starts))
    return best[:, k - 1]


@functools.partial(jax.jit, static_argnames=('col_batch',))
def _covered_block(probes, cols, radii, col_batch):
    """probes [R, D], cols [C, D], radii [C] (squared; -inf for padding) -> [R] bool: inside some ball."""
    cb = cols.reshape(-1, col_batch, cols.shape[1])
    rb = radii.reshape(-1, col_batch)

    def step(hit, xs):
        c, rad = xs
        d = _sqdist(probes, c, jnp.sum(jnp.square(c), 1))
        return hit | jnp.any(d <= rad[None, :], axis=1), None

    hit, _ = jax.lax.scan(step, jnp.zeros(probes.shape[0], bool), (cb, rb))
    return hit


def _pad_rows(x: np.ndarray, multiple: int) -> np.ndarray:
    pad = (-len(x)) % multiple
    return np.concatenate([x, np.zeros((pad, x.shape[1]), x.dtype)]) if pad else x


def _batches(n: int, want: int) -> int:
    return max(1, min(want, n))


def knn_radii(features, k: int = 3, row_batch_size: int = 2048, col_batch_size: int = 10000) -> np.ndarray:
    """Squared distance from each of features [N, D] to its k-th nearest other feature: [N] float32."""
    x = np.asarray(features, np.float32)
    n = len(x)
    if n <= k:
        raise ValueError(f'k-NN radii with k={k} need more than {k} features, got {n}')
    rb, cb = _batches(n, row_batch_size), _batches(n, col_batch_size)
    cols = jnp.asarray(_pad_rows(x, cb))
    rows = _pad_rows(x, rb)
    out = [np.asarray(_kth_block(jnp.asarray(rows[s : s + rb]), cols, n, k + 1, cb)) for s in range(0, n, rb)]
    return np.concatenate(out)[:n]


def _coverage(
    probes: np.ndarray, manifold: np.ndarray, radii: np.ndarray, row_batch_size: int, col_batch_size: int
) -> float:
    n, m = len(probes), len(manifold)
    rb, cb = _batches(n, row_batch_size), _batches(m, col_batch_size)
    cols = jnp.asarray(_pad_rows(manifold, cb))
    rad = np.concatenate([radii, np.full((-m) % cb, -np.inf, np.float32)]).astype(np.float32)
    rad = jnp.asarray(rad)
    rows = _pad_rows(probes, rb)
    hits = [np.asarray(_covered_block(jnp.asarray(rows[s : s + rb]), cols, rad, cb)) for s in range(0, n, rb)]
    return float(np.concatenate(hits)[:n].mean())


def precision_recall(real, gen, k: int = 3, row_batch_size: int = 2048, col_batch_size: int = 10000) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of gen [M, D] against real [N, D].

    Returns {'precision': float, 'recall': float}.
    """
    real, gen = np.asarray(real, np.float32), np.asarray(gen, np.float32)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f'features must be [N, D] with the same D, got {real.shape} and {gen.shape}')
    center = np.concatenate([real, gen]).astype(np.float64).mean(0).astype(np.float32)
    real, gen = real - center, gen - center
    out = {}
    for name, manifold, probes in (('precision', real, gen), ('recall', gen, real)):
        radii = knn_radii(manifold, k, row_batch_size, col_batch_size)
        out[name] = _coverage(probes, manifold, radii, row_batch_size, col_batch_size)
    return out
