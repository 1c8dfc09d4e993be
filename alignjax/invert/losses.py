"""Reconstruction losses for inversion. Every loss is a pytree with

    features(img [N, H, W, C] in [-1, 1]) -> pytree   (computed once for the targets)
    distance(f_synth, f_target)          -> [N]       (per image; images never interact)

so the projector can be jit-compiled with the loss passed as an argument. Available:

* `LPIPS` (alignjax.invert.lpips): the perceptual distance NVlabs/StyleAlign project with; needs weight files.
* `PixelSSIM`: weight-free default: mean squared error + (1 - multi-scale SSIM). Measured on the 32x32
  fixture generator (W+ with noise, 1000 steps): see docs in alignjax/invert/__init__.py.
* `DFeatures`: distances between the checkpoint's own discriminator block activations (channel-normalised as
  LPIPS does, uniformly weighted), plus a pixel term; a perceptual-ish loss from the GAN itself.
* `Sum`: a weighted sum of losses.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from alignjax.errors import InputError
from alignjax.nn import networks as N


def psnr(a, b):
    """Per-image PSNR in dB of [N, H, W, C] images in [-1, 1], both clipped to [-1, 1] first (what a saved
    8-bit image shows)."""
    a = jnp.clip(jnp.asarray(a, jnp.float32), -1, 1)
    b = jnp.clip(jnp.asarray(b, jnp.float32), -1, 1)
    mse = jnp.mean(jnp.square(a - b), axis=(1, 2, 3))
    return 10.0 * jnp.log10(4.0 / jnp.maximum(mse, 1e-12))


@functools.cache
def _blur_matrix(n: int, sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    """[n, n] matrix of a 1-D Gaussian blur with reflect padding (radius capped at n - 1)."""
    r = min(radius, n - 1)
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    m = np.zeros((n, n), np.float64)
    for i in range(n):
        for k, gk in zip(range(i - r, i + r + 1), g):
            j = -k if k < 0 else (2 * (n - 1) - k if k >= n else k)  # reflect (no edge repeat)
            m[i, j] += gk
    return m.astype(np.float32)


def _blur(x):
    """Separable Gaussian blur (sigma 1.5, 11 taps, reflect padding) of NHWC x, as two small matmuls."""
    mh = _blur_matrix(x.shape[1])
    mw = _blur_matrix(x.shape[2])
    hi = jax.lax.Precision.HIGHEST
    x = jnp.einsum('ij,njwc->niwc', mh, x, precision=hi)
    return jnp.einsum('ij,nhjc->nhic', mw, x, precision=hi)


def ssim(a, b):
    """Per-image mean SSIM of [N, H, W, C] images in [-1, 1] (computed on [0, 1]; Gaussian window, sigma 1.5)."""
    a = (a + 1) * 0.5
    b = (b + 1) * 0.5
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _blur(a), _blur(b)
    saa = _blur(a * a) - mu_a**2
    sbb = _blur(b * b) - mu_b**2
    sab = _blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)
    return jnp.mean(num / den, axis=(1, 2, 3))


def _pool2(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def ms_ssim(a, b, min_size=8, max_scales=5):
    """Mean of per-scale SSIM over a 2x average-pooling pyramid down to `min_size` px. [N]."""
    vals = []
    for _ in range(max_scales):
        vals.append(ssim(a, b))
        if a.shape[1] // 2 < min_size or a.shape[1] % 2:
            break
        a, b = _pool2(a), _pool2(b)
    return sum(vals) / len(vals)


@flax.struct.dataclass
class PixelSSIM:
    """mse_weight * MSE + ssim_weight * (1 - multi-scale SSIM), per image, on [-1, 1] images. No weights needed.

    The scale (100, 10) matters only against the noise-map regulariser (Adam is scale-free for the latent):
    NVlabs' weight 1e5 was set against LPIPS, and at 1x MSE it overwhelms the data term on the noise maps
    (32x32 fixture, W+ with noise, 1000 steps: 30.9 dB mean PSNR at scale 1, 31.3 at 10, 33.1 at 100, vs
    33.9 dB without noise maps).
    """

    mse_weight: float = flax.struct.field(pytree_node=False, default=100.0)
    ssim_weight: float = flax.struct.field(pytree_node=False, default=10.0)

    def features(self, img):
        return jnp.asarray(img, jnp.float32)

    def distance(self, fa, fb):
        d = self.mse_weight * jnp.mean(jnp.square(fa - fb), axis=(1, 2, 3))
        if self.ssim_weight:
            d = d + self.ssim_weight * (1.0 - ms_ssim(fa, fb))
        return d

    def __call__(self, a, b):
        return self.distance(self.features(a), self.features(b))


@flax.struct.dataclass
class DFeatures:
    """`d_weight` * distance between the discriminator's block activations (each channel-normalised per pixel,
    then mean squared difference, layers summed) + `pixel_weight` * MSE. `disc` is an `alignjax.Discriminator`.
    The pixel term (PixelSSIM's scale) anchors colours, which D features barely constrain."""

    disc: Any
    d_weight: float = flax.struct.field(pytree_node=False, default=10.0)
    pixel_weight: float = flax.struct.field(pytree_node=False, default=100.0)

    def features(self, img):
        img = jnp.asarray(img, jnp.float32)
        # The minibatch-stddev layer lives in the epilogue, whose output is not used; a group of the whole
        # batch keeps any batch size valid. Block activations are per image.
        cfg = self.disc.config.replace(mbstd_group_size=None)
        _, state = N.Discriminator(cfg).apply(
            self.disc.variables,
            img,
            capture_intermediates=lambda mdl, name: isinstance(mdl, N.DiscriminatorBlock) and name == '__call__',
            mutable=['intermediates'],
        )
        inter = state['intermediates']
        feats = [inter[f'b{r}']['__call__'][0] for r in cfg.block_resolutions]
        feats = [f[0] if isinstance(f, tuple) else f for f in feats]  # a block returns (x, img) when it passes img on
        feats = [f / (jnp.sqrt(jnp.sum(jnp.square(f), -1, keepdims=True)) + 1e-8) for f in feats]
        return {'img': img, 'd': feats}

    def distance(self, fa, fb):
        d = self.d_weight * sum(jnp.mean(jnp.sum(jnp.square(a - b), -1), axis=(1, 2)) for a, b in zip(fa['d'], fb['d']))
        if self.pixel_weight:
            d = d + self.pixel_weight * jnp.mean(jnp.square(fa['img'] - fb['img']), axis=(1, 2, 3))
        return d

    def __call__(self, a, b):
        return self.distance(self.features(a), self.features(b))


@flax.struct.dataclass
class Sum:
    """sum_k weights[k] * losses[k]."""

    losses: tuple
    weights: tuple = flax.struct.field(pytree_node=False, default=())

    def _w(self):
        return self.weights or (1.0,) * len(self.losses)

    def features(self, img):
        return tuple(l.features(img) for l in self.losses)

    def distance(self, fa, fb):
        return sum(w * l.distance(a, b) for w, l, a, b in zip(self._w(), self.losses, fa, fb))

    def __call__(self, a, b):
        return self.distance(self.features(a), self.features(b))


def make_loss(kind: str = 'auto', *, lpips=None, disc=None):
    """Resolve a loss by name. 'auto': LPIPS when `lpips` is given, else `PixelSSIM`.
    'lpips' | 'pixel' (PixelSSIM) | 'mse' (pixels only) | 'dfeat' (needs `disc`) | 'lpips+pixel'."""
    if kind == 'auto':
        kind = 'lpips' if lpips is not None else 'pixel'
    if kind in ('lpips', 'lpips+pixel'):
        if lpips is None:
            raise InputError(f'loss {kind!r} needs LPIPS weights (alignjax.invert.load_lpips)')
        return lpips if kind == 'lpips' else Sum((lpips, PixelSSIM(1.0, 0.0)), (1.0, 1.0))
    if kind == 'pixel':
        return PixelSSIM()
    if kind == 'mse':
        return PixelSSIM(100.0, 0.0)
    if kind == 'dfeat':
        if disc is None:
            raise InputError("loss 'dfeat' needs the checkpoint's discriminator")
        return DFeatures(disc)
    raise InputError(f'unknown loss {kind!r}: use auto | lpips | lpips+pixel | pixel | mse | dfeat')
