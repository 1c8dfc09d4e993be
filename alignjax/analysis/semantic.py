"""(3) Semantic alignment in W and in StyleSpace S, found in parent and child independently.

W: a ridge regression of each factor (the labeller's prediction) on w gives a direction per factor.
S: StyleSpace's positive-example relevance (Wu et al. 2021): over S codes normalised per channel (mean 0, std
1 over all samples), a channel's relevance to an attribute is |mean over positives| / std over positives; the
positives are the top `pos_frac` samples by the factor. Parent and child each rank their own channels; the
report gives the top-k overlap (IoU), the rank correlation of relevances (Spearman), the cosine of the W
directions, and the transfer: the parent's direction (or top channel) applied in the child changes the
child's factor by what fraction of the parent's change (slope ratio).

    sem = semantic_alignment(parent, child, faces_ev, toons_ev, n=2000, k=10)
    sem.factors['hair_color']   # {'w_cos', 'w_slope_ratio', 's_iou', 's_spearman', 's_slope_ratio', ...}
    d = w_directions(ws, labels)  # pure: unit directions [F, w_dim], slopes, fit R^2
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from alignjax.analysis.common import (
    FACTOR_NAMES,
    HUE,
    as_labeller,
    check_labeller_fits,
    check_pair,
    circ_diff,
    iou,
    mapping,
    sample_z,
    spearman,
    styles,
    synth,
    synth_styles,
)
from alignjax.analysis.zeroshot import _class_map
from alignjax.data import procedural as P


def _unwrap_hue(y, k):
    """bg_hue as a linear target: the circular offset from its circular mean (in [-0.5, 0.5))."""
    if k != HUE:
        return np.asarray(y, np.float64)
    m = np.angle(np.mean(np.exp(2j * np.pi * np.asarray(y)))) / (2 * np.pi)
    return circ_diff(y, m).astype(np.float64)


def w_directions(ws, labels, ridge: float = 1e-3) -> dict:
    """Ridge regression of labels [N, F] on w [N, D]: {'directions' [F, D] unit, 'coef' [F, D], 'r2' [F]}."""
    w = np.asarray(ws, np.float64)
    if w.ndim == 3:
        w = w[:, 0]
    y = np.asarray(labels, np.float64)
    if y.ndim == 1:
        y = y[:, None]
    wc, yc = w - w.mean(0), y - y.mean(0)
    a = wc.T @ wc / len(w)
    lam = ridge * np.trace(a) / a.shape[0]
    coef = np.linalg.solve(a + lam * np.eye(a.shape[0]), wc.T @ yc / len(w)).T  # [F, D]
    pred = wc @ coef.T
    r2 = 1 - ((pred - yc) ** 2).mean(0) / np.maximum(yc.var(0), 1e-12)
    norm = np.linalg.norm(coef, axis=1, keepdims=True)
    return dict(directions=coef / np.maximum(norm, 1e-12), coef=coef, r2=r2)


def flatten_styles(s: dict, names) -> np.ndarray:
    return np.concatenate([np.asarray(s[k]) for k in names], axis=1)


def s_relevance(s_flat, y, pos_frac: float = 0.1) -> np.ndarray:
    """StyleSpace relevance per channel [C] for attribute values y [N] (positives: the top pos_frac)."""
    s = np.asarray(s_flat, np.float64)
    s = (s - s.mean(0)) / np.maximum(s.std(0), 1e-8)
    y = np.asarray(y, np.float64)
    m = max(2, int(round(pos_frac * len(y))))
    pos = s[np.argsort(-y)[:m]]
    return np.abs(pos.mean(0)) / np.maximum(pos.std(0), 1e-8)


@dataclasses.dataclass
class SemanticResult:
    factors: dict  # factor -> {'w_cos', 'w_fit_r2_parent', 'w_fit_r2_child', 'w_slope_parent',
    #            'w_slope_child', 'w_slope_ratio', 's_top_parent', 's_top_child',
    #            's_iou', 's_spearman', 's_slope_ratio'}
    not_measured: list
    k: int
    n: int
    seeds: tuple
    channel_names: list  # flat S index -> 'b8.conv0[12]'
    summary: dict  # means over factors
    examples: dict = dataclasses.field(default_factory=dict, repr=False)


def _factor_change(lab, imgs_plus, imgs_minus, k):
    a = lab(imgs_plus)['factors'][:, k].astype(np.float64)
    b = lab(imgs_minus)['factors'][:, k].astype(np.float64)
    return circ_diff(a, b) if k == HUE else a - b


def semantic_alignment(
    parent,
    child,
    parent_labeller,
    child_labeller,
    *,
    n: int = 2000,
    seed: int = 0,
    k: int = 10,
    psi: float = 1.0,
    pos_frac: float = 0.1,
    transfer_n: int = 200,
    step: float = 2.0,
    factors=None,
    examples: int = 0,
    progress=None,
) -> SemanticResult:
    """See the module doc. `step`: the transfer edit is +-step standard deviations of the samples' projections
    on the direction (W) or of the channel (S), from the parent's samples; the same edit in both models."""
    check_pair(parent, child)
    lp = as_labeller(parent_labeller, name='parent labeller')
    lc = as_labeller(child_labeller, name='child labeller')
    check_labeller_fits(lp, parent, 'semantic alignment (parent)')
    check_labeller_fits(lc, child, 'semantic alignment (child)')
    names = [f for f in lp.readable() if f in lc.readable()]
    if factors is not None:
        names = [f for f in names if f in factors]
    snames = parent.style_names
    chan = [
        f'{nm}[{i}]'
        for nm in snames
        for i in range(np.shape(parent.styles(parent.mapping(np.zeros((1, parent.z_dim), np.float32)))[nm])[1])
    ]

    def side(gen, lab, sd):
        z = sample_z(n, gen.z_dim, sd)
        w = mapping(gen, z, psi)
        o = lab(synth(gen, w))
        return w, o['factors'], flatten_styles(styles(gen, w), snames)

    wp, yp, sp = side(parent, lp, seed)
    wc, yc, sc = side(child, lc, seed)  # the same z: each model labelled by its own labeller
    ks = [FACTOR_NAMES.index(f) for f in names]
    Yp = np.stack([_unwrap_hue(yp[:, i], i) for i in ks], 1) if ks else np.zeros((n, 0))
    Yc = np.stack([_unwrap_hue(yc[:, i], i) for i in ks], 1) if ks else np.zeros((n, 0))
    dp, dc = w_directions(wp, Yp), w_directions(wc, Yc)
    # transfer: the same w edit in both models, applied to each model's own w of the same z
    zt = sample_z(transfer_n, parent.z_dim, seed + 2)
    wtp, wtc = mapping(parent, zt, psi), mapping(child, zt, psi)
    stp, stc = styles(parent, wtp), styles(child, wtc)
    s_std = sp.std(0)
    off = np.cumsum([0] + [np.shape(stp[nm])[1] for nm in snames])
    out, ex = {}, {}
    for j, (f, kk) in enumerate(zip(names, ks)):
        d = dp['directions'][j]
        alpha = step * float((wp[:, 0] @ d).std())
        dw = (alpha * d)[None, None, :].astype(np.float32)
        chg_p = _factor_change(lp, synth(parent, wtp + dw), synth(parent, wtp - dw), kk)
        chg_c = _factor_change(lc, synth(child, wtc + dw), synth(child, wtc - dw), kk)
        slope_p, slope_c = float(chg_p.mean() / (2 * alpha)), float(chg_c.mean() / (2 * alpha))
        rp, rc = s_relevance(sp, Yp[:, j], pos_frac), s_relevance(sc, Yc[:, j], pos_frac)
        tp, tc = np.argsort(-rp)[:k], np.argsort(-rc)[:k]
        # S transfer: the parent's most relevant channel, moved by +-step parent stds, in both models
        c0 = int(tp[0])
        li = int(np.searchsorted(off, c0, side='right') - 1)
        nm, ci = snames[li], c0 - off[li]
        sign = np.sign(np.corrcoef(sp[:, c0], Yp[:, j])[0, 1]) or 1.0
        delta = step * float(s_std[c0]) * sign

        def edit(st, dv):
            e = dict(st)
            e[nm] = jnp.asarray(st[nm]).at[:, ci].add(dv)
            return e

        sp_chg = _factor_change(lp, synth_styles(parent, edit(stp, delta)), synth_styles(parent, edit(stp, -delta)), kk)
        sc_chg = _factor_change(lc, synth_styles(child, edit(stc, delta)), synth_styles(child, edit(stc, -delta)), kk)
        ratio = lambda a, b: float(a / b) if abs(b) > 1e-9 else float('nan')
        out[f] = dict(
            w_cos=float(d @ dc['directions'][j]),
            w_fit_r2_parent=float(dp['r2'][j]),
            w_fit_r2_child=float(dc['r2'][j]),
            w_slope_parent=slope_p,
            w_slope_child=slope_c,
            w_slope_ratio=ratio(slope_c, slope_p),
            s_top_parent=[chan[i] for i in tp],
            s_top_child=[chan[i] for i in tc],
            s_iou=iou(tp, tc),
            s_spearman=spearman(rp, rc),
            s_channel=chan[c0],
            s_change_parent=float(sp_chg.mean()),
            s_change_child=float(sc_chg.mean()),
            s_slope_ratio=ratio(float(sc_chg.mean()), float(sp_chg.mean())),
        )
        if examples:
            m = examples
            ex[f] = dict(
                parent=np.concatenate(
                    [synth(parent, wtp[:m] - dw), synth(parent, wtp[:m]), synth(parent, wtp[:m] + dw)]
                ),
                child=np.concatenate([synth(child, wtc[:m] - dw), synth(child, wtc[:m]), synth(child, wtc[:m] + dw)]),
            )
        if progress is not None:
            progress.update(1)
    mean = lambda key: float(np.nanmean([v[key] for v in out.values()])) if out else float('nan')
    median = lambda key: float(np.nanmedian([v[key] for v in out.values()])) if out else float('nan')
    summary = dict(
        w_cos=mean('w_cos'),
        s_iou=mean('s_iou'),
        s_spearman=mean('s_spearman'),
        w_slope_ratio_median=median('w_slope_ratio'),
        s_slope_ratio_median=median('s_slope_ratio'),
    )
    allf = [x for x in FACTOR_NAMES if x != 'detail']
    return SemanticResult(
        factors=out,
        not_measured=[x for x in allf if x not in out],
        k=k,
        n=n,
        seeds=(seed, seed + 2),
        channel_names=chan,
        summary=summary,
        examples=ex,
    )


# ----------------------------------------------------------------------------------------------------------
# Localised channels (StyleSpace, section 4.1): gradient maps of the image w.r.t. each S channel against masks.


def gradient_maps(gen, style_codes: dict) -> dict:
    """{layer: [C, N, R, R]}: |d image / d s_c| summed over RGB, for every channel c of every StyleSpace layer
    (forward-mode: one jvp per channel, vmapped over the channels of a layer; compiled once per layer and
    shared by every generator of the same architecture)."""
    s = {k: jnp.asarray(v) for k, v in style_codes.items()}
    # forward mode: Impl.wgrad='gemm' (a custom_vjp conv, reverse mode only) computes the same forward numbers
    # as 'xla', whose convs also have a jvp
    gen = gen.with_impl(wgrad='xla')
    return {layer: np.asarray(_grad_maps(gen, s, layer)) for layer in gen.style_names}


@functools.partial(jax.jit, static_argnames=('layer',))
def _grad_maps(gen, s, layer):
    def f(c):
        tan = {k: jnp.zeros_like(v) for k, v in s.items()}
        tan[layer] = tan[layer].at[:, c].set(1.0)
        _, d = jax.jvp(lambda x: gen.synthesis_from_styles(x, noise_mode='const'), (s,), (tan,))
        return jnp.abs(d).sum(-1)

    return jax.lax.map(f, jnp.arange(s[layer].shape[1]))


def localisation_scores(maps: dict, masks, num_classes: int, names, area_power: float = 0.5) -> np.ndarray:
    """[C_total, K]: per channel and mask class, the share of the channel's gradient energy inside the class,
    divided by the class's area share to the power `area_power` (the area discount: a large region collects
    energy by its size alone; 0.5 = square root), averaged over samples. masks: int [N, R, R]."""
    m = np.asarray(masks)
    onehot = np.eye(num_classes, dtype=np.float64)[m]  # [N, R, R, K]
    area = onehot.mean((1, 2))  # [N, K]
    rows = []
    for layer in names:
        g = np.asarray(maps[layer], np.float64)  # [C, N, R, R]
        e = np.einsum('cnhw,nhwk->cnk', g, onehot) / np.maximum(g.sum((2, 3))[..., None], 1e-12)
        rows.append((e / np.maximum(area, 1e-3)[None] ** area_power).mean(1))
    return np.concatenate(rows)


@dataclasses.dataclass
class LocalisedResult:
    classes: dict  # class -> {'top_parent', 'top_child', 'iou', 'spearman'}
    not_measured: list  # classes without a counterpart or too small
    k: int
    n: int
    seed: int
    mean_iou: float


def localised_channels(
    parent,
    child,
    parent_labeller,
    child_labeller,
    *,
    n: int = 16,
    seed: int = 0,
    k: int = 10,
    psi: float = 1.0,
    min_area: float = 0.005,
    class_names=None,
) -> LocalisedResult:
    """Top-k localised channels per mask class found in parent and child independently (each with its own
    images, gradient maps and its own labeller's predicted masks); IoU and Spearman of the scores. Classes are
    matched by name (`class_names`: {'parent': [...], 'child': [...]}, default: the procedural domains')."""
    check_pair(parent, child)
    lp = as_labeller(parent_labeller, name='parent labeller')
    lc = as_labeller(child_labeller, name='child labeller')
    cn = class_names or {'parent': P.MASK_CLASSES.get(lp.domain), 'child': P.MASK_CLASSES.get(lc.domain)}
    if not cn['parent'] or not cn['child']:
        raise ValueError('localised channels need the mask class names of both labellers')
    z = sample_z(n, parent.z_dim, seed)
    scores = {}
    for side, gen, lab, names in (('parent', parent, lp, cn['parent']), ('child', child, lc, cn['child'])):
        w = mapping(gen, z, psi)
        out = lab(synth(gen, w))
        if 'mask_logits' not in out:
            raise ValueError(f'{lab.name} gives no "mask_logits": localised channels need masks')
        masks = out['mask_logits'].argmax(-1)
        sc = localisation_scores(gradient_maps(gen, styles(gen, w)), masks, len(names), gen.style_names)
        scores[side] = (sc, np.eye(len(names))[masks].mean((0, 1, 2)))
    cmap = _class_map(cn['parent'], cn['child'])
    res, skipped = {}, []
    for i, name in enumerate(cn['parent']):
        j = int(cmap[i])
        if j < 0 or scores['parent'][1][i] < min_area or scores['child'][1][j] < min_area:
            skipped.append(name)
            continue
        a, b = scores['parent'][0][:, i], scores['child'][0][:, j]
        ta, tb = np.argsort(-a)[:k], np.argsort(-b)[:k]
        res[name] = dict(top_parent=ta.tolist(), top_child=tb.tolist(), iou=iou(ta, tb), spearman=spearman(a, b))
    return LocalisedResult(
        classes=res,
        not_measured=skipped,
        k=k,
        n=n,
        seed=seed,
        mean_iou=float(np.mean([v['iou'] for v in res.values()])) if res else float('nan'),
    )
