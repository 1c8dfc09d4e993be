"""Metric cards of the benchmark zoo: FD_eval to every procedural domain and KID / precision / recall to each
model's own domain, written into assets/zoo/<name>/card.json (`alignjax-zoo cards`)."""

from __future__ import annotations

import json

from alignjax.data import procedural as P
from alignjax.eval.zoo import CARD_N, DEMO_PARENT, ZOO, ZOO_DIR, load_zoo, zoo_path
from alignjax.io.checkpoint import load_checkpoint
from alignjax.metrics.compute import compute_metrics


def card_metrics(names=None, n: int = CARD_N, progress: bool = True, demo: bool = True) -> dict:
    """FD_eval to every domain, and KID/precision/recall (evaluator features) to the model's own domain, for
    every installed zoo model (and the demo parent, for comparison). Writes them into the cards."""
    names = [nm for nm in (names or list(ZOO)) if zoo_path(nm).exists()]
    models = {nm: load_zoo(nm).generator() for nm in names}
    if demo:
        models['demo_parent'] = load_checkpoint(DEMO_PARENT).generator()
    out = {}
    for nm, gen in models.items():
        own = ZOO[nm].domain if nm in ZOO else 'faces'
        res = {}
        for dom in P.DOMAINS:
            spec = f'proc:{dom}?n=20000'
            want = f'fd_eval{n}' + (f',kid_eval{n},pr_eval{n}' if dom == own else '')
            r = compute_metrics(gen, spec, want, progress=progress)
            res[f'fd_eval_{dom}'] = r[f'fd_eval{n}']
            if dom == own:
                res['kid_eval'] = r[f'kid_eval{n}']
                res['precision'] = r[f'pr_eval{n}_precision']
                res['recall'] = r[f'pr_eval{n}_recall']
        res['n'] = n
        out[nm] = res
        if nm == 'demo_parent':
            (ZOO_DIR / 'demo_parent_metrics.json').write_text(json.dumps(res, indent=1))
        else:
            p = zoo_path(nm) / 'card.json'
            card = json.loads(p.read_text())
            card['metrics'] = res
            p.write_text(json.dumps(card, indent=1))
    return out
