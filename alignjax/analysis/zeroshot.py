"""(7) Zero-shot tasks in the child domain with parent-domain supervision only, scored on held-out child renders.

(a) Attributes: linear (ridge) models on the first k W+ layers, fit on parent samples labelled by the parent
    labeller (parent-domain supervision); applied to child renders inverted in the child (W+).
(b) Landmarks and segmentation: invert the child render in the child, decode the latent with the parent, run
    the parent labeller on that (the geometry is aligned: landmarks and masks map back unchanged, mask classes
    by name).
Baselines: *naive* (the parent labeller on the child renders directly) and *oracle* (the same models trained
with child labels: the child-domain labeller for (b) and as the label source of the latent linear model).

    zs = zero_shot(parent, child, faces_ev, 'toons', oracle_labeller=toons_ev, n=64, steps=150)
    zs.attributes['zero_shot'][4]['mean_r2'], zs.attributes['naive']['mean_r2'], zs.dense['zero_shot']['pck_0_1']
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alignjax.analysis.common import (
    FACTOR_NAMES,
    GLASSES,
    HUE,
    as_labeller,
    check_pair,
    mapping,
    sample_z,
    synth,
    to_uint8,
)
from alignjax.analysis.pointwise import _common_landmarks
from alignjax.data import procedural as P
from alignjax.eval.data import EVAL_SEED, render_set
from alignjax.eval.evaluator import expressed_factors
from alignjax.eval.scores import confusion, factor_scores, landmark_scores, mask_scores
from alignjax.invert import InvertConfig, decode, invert

CLASS_ALIASES = {'fur': 'skin', 'skin': 'fur'}


@dataclasses.dataclass
class ZeroShotResult:
    domain: str
    factors: list  # scored: expressed by the child domain and read by the parent labeller
    attributes: dict  # 'zero_shot' {'W+ k=4' | 'W': scores}, 'oracle_latent' {same keys}, 'naive', 'oracle'
    dense: dict  # 'zero_shot' / 'naive' / 'oracle' -> landmark + mask scores (None: n/a)
    dense_note: str
    best: str  # the zero-shot latent model with the best mean R^2 ('W+ k=4', 'W', ...)
    n: int
    steps: int
    train_n: int
    seed: int
    inversion_psnr: float
    examples: dict = dataclasses.field(default_factory=dict, repr=False)


def _attr_scores(pred, true, names):
    full = factor_scores(pred, true)
    sc = {f: full[f] for f in names}
    vals = [v for f, v in sc.items() if f != 'glasses' and v is not None]
    return dict(factors=sc, mean_r2=float(np.mean(vals)) if vals else float('nan'), glasses_acc=sc.get('glasses'))


def fit_latent_models(ws, labels, k: int, ridge: float = 1e-3):
    """Ridge regression of labels [N, 18] on the first k W+ layers (hue as (cos, sin); glasses on its logit).
    Returns a predict(ws) -> [N, 18] function."""
    x = np.asarray(ws, np.float64)[:, :k].reshape(len(ws), -1)
    y = _targets(np.asarray(labels, np.float64))
    mx, my = x.mean(0), y.mean(0)
    xc = x - mx
    a = xc.T @ xc / len(x)
    lam = ridge * np.trace(a) / a.shape[0]
    coef = np.linalg.solve(a + lam * np.eye(a.shape[0]), xc.T @ (y - my) / len(x))

    def predict(w):
        xx = np.asarray(w, np.float64)[:, :k].reshape(len(w), -1)
        return _untargets((xx - mx) @ coef + my)

    return predict


def _targets(f):
    h = 2 * np.pi * f[:, HUE]
    return np.concatenate([f, np.cos(h)[:, None], np.sin(h)[:, None]], 1)


def _untargets(t):
    f = t[:, : len(FACTOR_NAMES)].copy()
    f[:, HUE] = (np.arctan2(t[:, -1], t[:, -2]) / (2 * np.pi)) % 1.0
    return f


def _class_map(src_names, dst_names):
    """index map parent class -> child class (by name, with aliases); -1 where the child has no such class."""
    m = []
    for c in src_names:
        if c in dst_names:
            m.append(dst_names.index(c))
        elif CLASS_ALIASES.get(c) in dst_names:
            m.append(dst_names.index(CLASS_ALIASES[c]))
        else:
            m.append(-1)
    return np.asarray(m)


def _dense_scores(out, data, parent_domain, domain, resolution, from_domain):
    res = {}
    kl = _common_landmarks(from_domain, domain, out.get('landmarks'), data['landmarks'])
    if kl and 'landmarks' in out:
        res.update(
            landmark_scores(out['landmarks'][:, :kl], data['landmarks'][:, :kl], data['visible'][:, :kl], resolution)
        )
    if 'mask_logits' in out:
        src, dst = P.MASK_CLASSES.get(from_domain), P.MASK_CLASSES[domain]
        pred = np.asarray(out['mask_logits']).argmax(-1)
        if src is not None and src != dst:
            cm_ = _class_map(src, dst)
            if (cm_ >= 0).sum() >= 2:
                pred = np.where(cm_[pred] >= 0, cm_[pred], len(dst))  # unmapped -> a class of its own
            else:
                pred = None
        if pred is not None:
            cm = confusion(pred, data['mask'], len(dst) + 1)[: len(dst) + 1, : len(dst) + 1]
            ms = mask_scores(cm, tuple(dst) + ('(unmapped)',))
            res['miou'] = ms['miou']
    return res or None


def zero_shot(
    parent,
    child,
    parent_labeller,
    domain: str,
    *,
    oracle_labeller=None,
    n: int = 64,
    steps: int = 150,
    ks=(1, 2, 4, 8),
    train_n: int = 2000,
    seed: int = 0,
    start: int = 20000,
    inversion=None,
    psi: float = 1.0,
    examples: int = 6,
    progress: bool = False,
    w_space: bool = True,
) -> ZeroShotResult:
    """See the module doc. Child renders: indices [start, start + n) of EVAL_SEED of `domain`. `inversion`: a
    precomputed InvertResult of those renders in the child (W+), to share across calls. w_space: also invert
    in W (one w for every layer, as the linear models were fit) and score the attribute models on it."""
    check_pair(parent, child)
    lp = as_labeller(parent_labeller, name='parent labeller')
    lo = as_labeller(oracle_labeller, name='oracle labeller') if oracle_labeller is not None else None
    data = render_set(domain, child.resolution, EVAL_SEED, start, n)
    exp = expressed_factors(domain)
    names = [f for f in lp.readable() if exp[FACTOR_NAMES.index(f)]]
    if lo is not None:
        names = [f for f in names if f in lo.readable() or f == 'glasses' and exp[GLASSES]]
    inv = inversion or invert(
        child,
        data['image'],
        InvertConfig(space='w+', steps=steps),
        seed=seed,
        progress=progress,
        desc=f'invert {domain} in the child',
    )
    codes = {'W+': np.asarray(inv.latents.code)}
    if w_space:
        inv_w = invert(
            child,
            data['image'],
            InvertConfig(space='w', steps=steps),
            seed=seed,
            progress=progress,
            desc=f'invert {domain} in the child (W)',
        )
        codes['W'] = np.asarray(inv_w.latents.code)
    ks = [k for k in ks if k <= parent.num_ws]
    # (a) parent supervision: parent samples labelled by the parent labeller
    z = sample_z(train_n, parent.z_dim, seed + 11)
    wp = mapping(parent, z, psi)
    yp = lp(synth(parent, wp))['factors']
    attrs = {'zero_shot': {}, 'oracle_latent': {}}
    if lo is not None:
        wc = mapping(child, z, psi)
        yc = lo(synth(child, wc))['factors']
    runs = [(f'W+ k={k}', 'W+', k) for k in ks] + ([('W', 'W', 1)] if 'W' in codes else [])
    for key, space, k in runs:
        attrs['zero_shot'][key] = _attr_scores(fit_latent_models(wp, yp, k)(codes[space]), data['factors'], names)
        if lo is not None:
            attrs['oracle_latent'][key] = _attr_scores(
                fit_latent_models(wc, yc, k)(codes[space]), data['factors'], names
            )
    naive_out = lp(data['image'])
    attrs['naive'] = _attr_scores(naive_out['factors'], data['factors'], names)
    if lo is not None:
        oracle_out = lo(data['image'])
        attrs['oracle'] = _attr_scores(oracle_out['factors'], data['factors'], names)
    best = max(attrs['zero_shot'], key=lambda key: attrs['zero_shot'][key]['mean_r2'])
    # (b) dense tasks through the parent
    through = to_uint8(decode(parent, inv.latents))
    zs_out = lp(through)
    pdom = lp.domain or 'faces'
    dense = {
        'zero_shot': _dense_scores(zs_out, data, pdom, domain, child.resolution, pdom),
        'naive': _dense_scores(naive_out, data, pdom, domain, child.resolution, pdom),
    }
    if lo is not None:
        dense['oracle'] = _dense_scores(oracle_out, data, pdom, domain, child.resolution, lo.domain or domain)
    note = ''
    if dense['zero_shot'] is None:
        note = f'{pdom} and {domain} share no landmarks or mask classes: dense tasks n/a'
    ex = dict(
        input=data['image'][:examples],
        recon=to_uint8(decode(child, inv.latents.take(np.arange(min(examples, n))))),
        through_parent=through[:examples],
    )
    return ZeroShotResult(
        domain=domain,
        factors=names,
        attributes=attrs,
        dense=dense,
        dense_note=note,
        best=best,
        n=n,
        steps=int(steps),
        train_n=train_n,
        seed=seed,
        inversion_psnr=float(np.mean(inv.psnr)),
        examples=ex,
    )
