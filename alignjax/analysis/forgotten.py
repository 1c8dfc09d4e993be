"""(5) Forgotten directions: the parent's glasses direction (found in the parent's W from its labeller) applied
in other models, against a random direction of the same norm, with a control direction (hair colour).

    fg = forgotten_directions(parent, {'parent': parent, 'animals': animals, 'animals_faces': af},
                              faces_ev, {'parent': faces_ev, 'animals': animals_ev, 'animals_faces': faces_ev})
    fg.models['animals']['glasses']['feature_ratio']   # ~1: the direction does nothing special (dormant)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alignjax.analysis.common import (
    FACTOR_NAMES,
    GLASSES,
    AnalysisError,
    as_labeller,
    check_pair,
    mapping,
    sample_z,
    synth,
)
from alignjax.analysis.semantic import w_directions

_sig = lambda x: 1 / (1 + np.exp(-np.asarray(x, np.float64)))


@dataclasses.dataclass
class ForgottenResult:
    direction_norm: float  # ||d_glasses|| (= the norm of the random and control edits)
    parent_glasses_rate: float  # share of parent samples the labeller calls glasses-wearing
    control: str
    models: dict  # model -> {'glasses': {...}, 'control': {...}, 'expresses_glasses': bool}
    n: int
    seed: int
    psi: float
    examples: dict = dataclasses.field(default_factory=dict, repr=False)


def glasses_direction(ws, glasses_logits) -> np.ndarray:
    """Mean w of the samples labelled glasses-wearing minus the mean of the others (the edit that, on
    average, turns the one group into the other)."""
    w = np.asarray(ws, np.float64)
    w = w[:, 0] if w.ndim == 3 else w
    pos = np.asarray(glasses_logits) > 0
    if pos.sum() < 2 or (~pos).sum() < 2:
        raise AnalysisError(
            f'the glasses direction needs samples with and without glasses; the labeller calls '
            f'{int(pos.sum())} of {len(pos)} glasses-wearing'
        )
    return w[pos].mean(0) - w[~pos].mean(0)


def forgotten_directions(
    parent,
    models: dict,
    parent_labeller,
    labellers: dict,
    *,
    glasses_labeller=None,
    n: int = 2000,
    edit_n: int = 200,
    seed: int = 0,
    psi: float = 1.0,
    control: str = 'hair_color',
    examples: int = 6,
) -> ForgottenResult:
    """Effect of the parent's glasses direction (and of the control factor's regression direction, scaled to
    the same norm) in each model: image change relative to a random direction of the same norm, in pixels
    and in the features of the model's own labeller; where the model's domain expresses glasses, the change
    of `glasses_labeller`'s (default: the parent labeller's) glasses probability."""
    lp = as_labeller(parent_labeller, name='parent labeller')
    lg = as_labeller(glasses_labeller or parent_labeller, name='glasses labeller')
    z = sample_z(n, parent.z_dim, seed)
    wp = mapping(parent, z, psi)
    fp = lp(synth(parent, wp))['factors']
    d = glasses_direction(wp, fp[:, GLASSES])
    norm = float(np.linalg.norm(d))
    kc = FACTOR_NAMES.index(control)
    dc = w_directions(wp, fp[:, kc : kc + 1])['directions'][0] * norm
    r = np.random.RandomState(seed + 7).randn(parent.w_dim)
    r = r / np.linalg.norm(r) * norm
    ze = sample_z(edit_n, parent.z_dim, seed + 1)
    out, ex = {}, {}
    for name, gen in models.items():
        if gen is not parent:
            check_pair(parent, gen, f'parent and {name}')
        lab = as_labeller(labellers[name], name=f'{name} labeller')
        expresses = bool(lab.expressed[GLASSES]) and lab.domain != 'buildings'
        w = mapping(gen, ze, psi)
        base = synth(gen, w)
        ob = lab(base)
        shift = lambda v: synth(gen, w + v[None, None, :].astype(np.float32))
        rnd = shift(r)
        orn = lab(rnd)
        pix = lambda a: float(np.mean(np.abs(a.astype(np.float32) - base.astype(np.float32))))
        feat = lambda o: float(np.mean(np.linalg.norm(o['features'] - ob['features'], axis=1)))
        res = {'random': dict(pixel=pix(rnd), feature=feat(orn))}
        for key, v in (('glasses', d), ('control', dc)):
            img = shift(v)
            o = lab(img)
            e = dict(pixel=pix(img), feature=feat(o))
            e['pixel_ratio'] = e['pixel'] / max(res['random']['pixel'], 1e-9)
            e['feature_ratio'] = e['feature'] / max(res['random']['feature'], 1e-9)
            if key == 'glasses':
                if expresses:
                    g0, g1 = lg(base)['factors'][:, GLASSES], lg(img)['factors'][:, GLASSES]
                    e['glasses_prob_change'] = float(np.mean(_sig(g1) - _sig(g0)))
                    e['glasses_flip_rate'] = float(np.mean(g1[g0 <= 0] > 0)) if np.any(g0 <= 0) else float('nan')
                else:
                    e['glasses_prob_change'] = None
                    e['glasses_flip_rate'] = None
            else:
                ch = o['factors'][:, kc] - ob['factors'][:, kc]
                if kc == FACTOR_NAMES.index('bg_hue'):
                    ch = (ch + 0.5) % 1.0 - 0.5
                e['factor_change'] = float(np.mean(ch))
            res[key] = e
            if examples:
                ex.setdefault(name, {})[key] = img[:examples]
        if examples:
            ex[name]['base'] = base[:examples]
            ex[name]['random'] = rnd[:examples]
        res['expresses_glasses'] = expresses
        out[name] = res
    return ForgottenResult(
        direction_norm=norm,
        parent_glasses_rate=float(np.mean(fp[:, GLASSES] > 0)),
        control=control,
        models=out,
        n=n,
        seed=seed,
        psi=psi,
        examples=ex,
    )
