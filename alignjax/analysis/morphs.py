"""(8) Morph quality: endpoint fidelity and smoothness of parent -> child morphs, for latent + weights
interpolation (StyleAlign's morph), latent-only (the parent's weights throughout) and weights-only (the
source latent throughout).

    mq = morph_quality(parent, child, toons_ev, n=8, frames=24)
    mq.methods['latent+weights']   # {'endpoint_start', 'endpoint_end', 'smooth_max_mean', ...}
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alignjax.analysis.common import as_labeller, check_pair, mapping, sample_z, to_uint8
from alignjax.apps.morphing import morph
from alignjax.invert.project import Latents

METHODS = ('latent+weights', 'latent-only', 'weights-only')


@dataclasses.dataclass
class MorphResult:
    methods: dict  # method -> scores (see morph_quality)
    n: int
    frames: int
    seed: int
    psi: float
    examples: dict = dataclasses.field(default_factory=dict, repr=False)  # method -> uint8 [F, R, R, 3]


def step_stats(feats) -> dict:
    """feats [N, F, D] along N morphs -> per-step distance stats: mean step, max/mean ratio (1 = uniform)."""
    d = np.linalg.norm(np.diff(np.asarray(feats, np.float64), axis=1), axis=-1)  # [N, F-1]
    mean = d.mean(1)
    return dict(step_mean=float(mean.mean()), max_mean_ratio=float(np.mean(d.max(1) / np.maximum(mean, 1e-12))))


def morph_quality(
    parent, child, labeller, *, n: int = 8, frames: int = 24, seed: int = 0, psi: float = 0.7
) -> MorphResult:
    """Source: parent samples; target: child samples of other z. Endpoint fidelity: the first / last frame's
    distance (labeller features; pixels in [0, 255]) to the parent's source / the child's target render,
    divided by the source-target distance (0 = exact). Smoothness: per-step feature distances, max/mean."""
    check_pair(parent, child)
    lab = as_labeller(labeller)
    zs, zt = sample_z(n, parent.z_dim, seed), sample_z(n, parent.z_dim, seed + 1)
    src = Latents(code=mapping(parent, zs, psi), space='w+')
    tgt = Latents(code=mapping(child, zt, psi), space='w+')
    a = to_uint8(parent.synthesis(src.code, noise_mode='const'))
    b = to_uint8(child.synthesis(tgt.code, noise_mode='const'))
    fa, fb = lab(a)['features'], lab(b)['features']
    ab_f = np.linalg.norm(fa - fb, axis=1)
    ab_p = np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32)), axis=(1, 2, 3))
    lin = np.linspace(0, 1, frames, dtype=np.float32)
    sched = {
        'latent+weights': (lin, lin),
        'latent-only': (lin, np.zeros_like(lin)),
        'weights-only': (np.zeros_like(lin), lin),
    }
    out, ex = {}, {}
    for m, (tl, tw) in sched.items():
        fr = to_uint8(morph(parent, child, src, tgt, frames=tl, t_weights=tw))  # [N, F, R, R, 3]
        feats = lab(fr.reshape((-1,) + fr.shape[2:]))['features'].reshape(n, frames, -1)
        f0 = np.linalg.norm(feats[:, 0] - fa, axis=1) / np.maximum(ab_f, 1e-9)
        f1 = np.linalg.norm(feats[:, -1] - fb, axis=1) / np.maximum(ab_f, 1e-9)
        p1 = np.mean(np.abs(fr[:, -1].astype(np.float32) - b.astype(np.float32)), axis=(1, 2, 3)) / ab_p
        s = step_stats(feats)
        out[m] = dict(
            endpoint_start=float(f0.mean()),
            endpoint_end=float(f1.mean()),
            endpoint_end_pixel=float(p1.mean()),
            smooth_max_mean=s['max_mean_ratio'],
            step_mean=s['step_mean'],
            pixel_smooth_max_mean=step_stats(fr.reshape(n, frames, -1).astype(np.float32))['max_mean_ratio'],
        )
        ex[m] = fr[0]
    return MorphResult(methods=out, n=n, frames=frames, seed=seed, psi=psi, examples=ex)
