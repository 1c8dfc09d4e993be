"""(2) Point-wise alignment: the same z (each model's own mapping) or the same w (the parent's mapping) through
parent and child; the child's evaluator predictions against the parent's, per factor, and the landmark
correspondence.

    pw = pointwise_alignment(parent, child, faces_ev, toons_ev, n=1000)
    pw.factors['yaw']   # {'z': {'r2', 'pearson'}, 'w': {...}}
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alignjax.analysis.common import (
    FACTOR_NAMES,
    agreement,
    as_labeller,
    check_labeller_fits,
    check_pair,
    mapping,
    sample_z,
    synth,
)
from alignjax.data import procedural as P


@dataclasses.dataclass
class PointwiseResult:
    factors: dict  # factor -> {'z': {'r2', 'pearson'}, 'w': {...}}
    not_measured: list  # factors one of the two labellers does not read
    landmarks: dict | None  # {'z': {'px', 'nme', 'n_points'}, 'w': ...} or None (different landmark sets)
    mean_r2: dict  # 'z' / 'w' -> mean R^2 over measured factors (glasses: scored by accuracy)
    mean_pearson: dict
    n: int
    seed: int
    psi: float


def pointwise_alignment(
    parent, child, parent_labeller, child_labeller, *, n: int = 1000, seed: int = 0, psi: float = 1.0, factors=None
) -> PointwiseResult:
    """Per-factor agreement between the parent's labels of parent(z) and the child's labels of child(z)
    ('z': each model maps z itself) and of child(w_parent) ('w': the parent's w through the child's synthesis).
    R^2 = 1 - MSE / var (parent's prediction as the reference; can be negative), Pearson r. Landmarks: mean
    distance (px, and / image size) between the two models' landmarks for points visible in both (only when
    both labellers name the same landmark set)."""
    check_pair(parent, child)
    lp = as_labeller(parent_labeller, name='parent labeller')
    lc = as_labeller(child_labeller, name='child labeller')
    check_labeller_fits(lp, parent, 'point-wise alignment (parent)')
    check_labeller_fits(lc, child, 'point-wise alignment (child)')
    z = sample_z(n, parent.z_dim, seed)
    wp = mapping(parent, z, psi)
    op = lp(synth(parent, wp))
    oc = {'z': lc(synth(child, mapping(child, z, psi))), 'w': lc(synth(child, wp))}
    both = [f for f in lp.readable() if f in lc.readable()]
    if factors is not None:
        both = [f for f in both if f in factors]
    out = {}
    for f in both:
        k = FACTOR_NAMES.index(f)
        out[f] = {m: agreement(o['factors'][:, k], op['factors'][:, k], k) for m, o in oc.items()}
    lm = None
    kl = _common_landmarks(lp.domain, lc.domain, op.get('landmarks'), oc['z'].get('landmarks'))
    if kl:
        lm = {}
        for m, o in oc.items():
            vis = (
                (op['visible'][:, :kl] > 0.5) & (o['visible'][:, :kl] > 0.5)
                if 'visible' in op and 'visible' in o
                else np.ones((n, kl), bool)
            )
            err = np.linalg.norm(o['landmarks'][:, :kl] - op['landmarks'][:, :kl], axis=-1)[vis]
            lm[m] = dict(
                px=float(err.mean()) if err.size else float('nan'),
                nme=float(err.mean() / parent.resolution) if err.size else float('nan'),
                n_points=int(err.size),
            )
    measured = [f for f in out]

    def mean(key, m):
        v = [out[f][m][key] for f in measured if out[f][m][key] is not None]
        return float(np.mean(v)) if v else float('nan')

    names = [f for f in FACTOR_NAMES if f != 'detail']
    return PointwiseResult(
        factors=out,
        not_measured=[f for f in names if f not in out],
        landmarks=lm,
        mean_r2={m: mean('r2', m) for m in oc},
        mean_pearson={m: mean('pearson', m) for m in oc},
        n=n,
        seed=seed,
        psi=psi,
    )


def _common_landmarks(a, b, la, lb) -> int:
    """How many leading landmarks the two labellers share (by name for the procedural domains; 0: none)."""
    if la is None or lb is None:
        return 0
    names = getattr(P, 'LANDMARK_NAMES', {})
    if a in names and b in names:
        k = 0
        for x, y in zip(names[a], names[b]):
            if x != y:
                break
            k += 1
        return k
    return la.shape[1] if la.shape[1:] == lb.shape[1:] else 0
