"""(6) Translation methods on held-out *renders* of the parent domain (real inputs with ground truth): invert in
the parent (StyleAlign's Z + psi 0.5, W, W+, W+ with noise maps), decode with the child; the layer-swap baseline
(Toonify: the child's blocks up to swap_res, the parent's above) renders the W+ latents.

    inv = invert_inputs(parent, renders['image'], steps=150)          # once, shared by every child
    tr = translation_methods(parent, child, inv, renders, toons_ev, reference=toons_ref)
    tr.methods['W+']   # {'factor_r2': {...}, 'factor_mae': {...}, 'mean_r2', 'landmark_nme', 'fd_eval', ...}
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alignjax.analysis.changes import fd
from alignjax.analysis.common import FACTOR_NAMES, GLASSES, HUE, as_labeller, check_pair, circ_diff, to_uint8
from alignjax.analysis.pointwise import _common_landmarks
from alignjax.apps.swapping import layer_swap
from alignjax.eval.evaluator import expressed_factors
from alignjax.invert import InvertConfig, decode, invert

METHODS = {
    'Z+psi0.5 (StyleAlign)': lambda s: InvertConfig.stylealign(steps=s),
    'W': lambda s: InvertConfig(space='w', steps=s),
    'W+': lambda s: InvertConfig(space='w+', steps=s),
    'W+ noise': lambda s: InvertConfig(space='w+', noise=True, steps=s),
}


def invert_inputs(parent, images, *, steps: int = 150, methods=None, seed: int = 0, progress: bool = False) -> dict:
    """{method: InvertResult} of `images` in the parent for each method of METHODS."""
    out = {}
    for m in methods or METHODS:
        out[m] = invert(parent, images, METHODS[m](steps), seed=seed, progress=progress, desc=f'invert {m}')
    return out


@dataclasses.dataclass
class TranslationResult:
    methods: dict  # method -> scores
    factors: list  # factors scored (expressed by the input domain, read by the child labeller)
    n: int
    steps: int
    swap_res: tuple
    examples: dict = dataclasses.field(default_factory=dict, repr=False)


def _decode(gen, lat):
    return to_uint8(decode(gen, lat))


def translation_methods(
    parent,
    child,
    inversions: dict,
    renders: dict,
    child_labeller=None,
    *,
    reference=None,
    swap_res=(8, 16),
    steps: int | None = None,
    examples: int = 6,
    input_domain: str = 'faces',
) -> TranslationResult:
    """Scores per method: factor preservation (the input's true factors vs the child labeller's factors of the
    translation: R^2 / MAE per factor, glasses accuracy), landmark NME against the input's landmarks (points
    visible in the input, the landmarks both domains share), realism (FD_eval of the translations to the child
    domain, `reference` = child-domain features) and the parent's reconstruction PSNR. Without a labeller only
    the PSNR is given (realism needs features)."""
    check_pair(parent, child)
    lab = as_labeller(child_labeller) if child_labeller is not None else None
    true_f = np.asarray(renders['factors'])
    n = len(true_f)
    outs = {m: (_decode(child, r.latents), float(np.mean(r.psnr))) for m, r in inversions.items()}
    if 'W+' in inversions:
        for sr in swap_res:
            outs[f'layer swap @{sr} (W+)'] = (
                _decode(layer_swap(parent, child, sr), inversions['W+'].latents),
                float(np.mean(inversions['W+'].psnr)),
            )
    names = []
    if lab is not None:
        exp_in = expressed_factors(input_domain)
        names = [f for f in lab.readable() if exp_in[FACTOR_NAMES.index(f)]]
    res, ex = {}, {'input': np.asarray(renders['image'])[:examples]}
    for m, (img, ps) in outs.items():
        row = dict(recon_psnr=ps)
        ex[m] = img[:examples]
        if lab is not None:
            o = lab(img)
            r2s, maes = {}, {}
            for f in names:
                k = FACTOR_NAMES.index(f)
                p, t = o['factors'][:, k].astype(np.float64), true_f[:, k].astype(np.float64)
                if k == GLASSES:
                    r2s[f] = float(np.mean((p > 0) == (t > 0.5)))
                    maes[f] = None
                    continue
                e = circ_diff(p, t) if k == HUE else p - t
                cv = (
                    np.mean(circ_diff(t, np.angle(np.mean(np.exp(2j * np.pi * t))) / (2 * np.pi)) ** 2)
                    if k == HUE
                    else np.var(t)
                )
                r2s[f] = float(1 - np.mean(e**2) / cv) if cv > 0 else float('nan')
                maes[f] = float(np.mean(np.abs(e)))
            row['factor_r2'], row['factor_mae'] = r2s, maes
            vals = [v for f, v in r2s.items() if f != 'glasses']
            row['mean_r2'] = float(np.mean(vals)) if vals else float('nan')
            kl = _common_landmarks(input_domain, lab.domain, renders.get('landmarks'), o.get('landmarks'))
            if kl:
                vis = np.asarray(renders['visible'])[:, :kl]
                err = np.linalg.norm(o['landmarks'][:, :kl] - renders['landmarks'][:, :kl], axis=-1)[vis]
                row['landmark_nme'] = float(err.mean() / child.resolution)
            else:
                row['landmark_nme'] = None
            row['fd_eval'] = fd(reference, o['features']) if reference is not None and 'features' in o else None
        res[m] = row
    return TranslationResult(
        methods=res, factors=names, n=n, steps=int(steps or 0), swap_res=tuple(swap_res), examples=ex
    )
