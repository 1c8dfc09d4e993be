"""Scores of predicted ground truth against true ground truth: per-factor R^2 (circular for `bg_hue`,
accuracy for `glasses`), landmark NME and PCK (normalised by the image size, visible points only), mask mIoU.

    acc = evaluate(ev, n=2000)                      # held-out renders of ev.domain (EVAL_SEED)
    acc = evaluate(ev, n=2000, degrade=dict(blur=0.6, noise=4))
    s = factor_scores(pred['factors'], true_factors, domain)   # {'yaw': 0.98, ..., 'glasses': 0.99 (accuracy)}
"""

from __future__ import annotations

import json

import numpy as np

from alignjax.data import procedural as P
from alignjax.eval.data import EVAL_SEED, render_set
from alignjax.eval.data import degrade as _degrade
from alignjax.eval.evaluator import ASSETS, GLASSES, HUE, expressed_factors

FACTOR_NAMES = P.FACTOR_NAMES


def circular_diff(a, b):
    """Signed difference of hues in [0, 1) cycles, wrapped to [-0.5, 0.5)."""
    return (np.asarray(a) - np.asarray(b) + 0.5) % 1.0 - 0.5


def r2(pred, true) -> float:
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    var = np.var(true)
    return float(1 - np.mean((pred - true) ** 2) / var) if var > 0 else float('nan')


def factor_scores(pred, true, domain: str | None = None) -> dict[str, float | None]:
    """Per factor: R^2 (bg_hue: 1 - mean circular error^2 / circular variance), glasses: accuracy of logit > 0.
    Factors `domain` does not express map to None (n/a)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    keep = expressed_factors(domain) if domain else np.ones(len(FACTOR_NAMES), bool)
    out: dict[str, float | None] = {}
    for k, name in enumerate(FACTOR_NAMES):
        if not keep[k]:
            out[name] = None
        elif k == GLASSES:
            out[name] = float(np.mean((pred[:, k] > 0) == (true[:, k] > 0.5)))
        elif k == HUE:
            t = true[:, k]
            cvar = np.mean(circular_diff(t, _circular_mean(t)) ** 2)
            out[name] = float(1 - np.mean(circular_diff(pred[:, k], t) ** 2) / cvar)
        else:
            out[name] = r2(pred[:, k], true[:, k])
    return out


def _circular_mean(h):
    a = 2 * np.pi * np.asarray(h)
    return (np.arctan2(np.sin(a).mean(), np.cos(a).mean()) / (2 * np.pi)) % 1.0


def landmark_scores(pred, true, visible, resolution: int) -> dict[str, float]:
    """NME (mean point error / image size) and PCK@0.05/0.1 over visible landmarks. pred/true [N, K, 2] px."""
    err = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(true, np.float64), axis=-1) / resolution
    v = np.asarray(visible, bool)
    e = err[v]
    return dict(
        nme=float(e.mean()),
        pck_0_05=float((e < 0.05).mean()),
        pck_0_1=float((e < 0.1).mean()),
        mean_px=float(e.mean() * resolution),
    )


def confusion(pred_mask, true_mask, num_classes: int) -> np.ndarray:
    """[C, C] pixel counts, rows true class, columns predicted."""
    t = np.asarray(true_mask, np.int64).reshape(-1)
    p = np.asarray(pred_mask, np.int64).reshape(-1)
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def mask_scores(cm: np.ndarray, class_names) -> dict:
    """mIoU over the classes present in the ground truth, and the per-class IoU."""
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    present = cm.sum(1) > 0
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return dict(
        miou=float(np.nanmean(iou[present])),
        iou={n: (float(iou[i]) if present[i] else None) for i, n in enumerate(class_names)},
        pixel_acc=float(inter.sum() / max(cm.sum(), 1)),
    )


def score(ev, data: dict, images=None) -> dict:
    """Every score of evaluator `ev` on rendered `data` (render_set's dict); `images` replaces data['image']
    (e.g. degraded copies)."""
    domain = ev.domain
    out = ev(data['image'] if images is None else images)
    pred = {k: np.asarray(v) for k, v in out.items()}
    cm = confusion(pred['mask_logits'].argmax(-1), data['mask'], len(P.MASK_CLASSES[domain]))
    vis_acc = float(np.mean((pred['visible'] > 0.5) == data['visible']))
    return dict(
        factors=factor_scores(pred['factors'], data['factors'], domain),
        landmarks=landmark_scores(pred['landmarks'], data['landmarks'], data['visible'], ev.resolution),
        visible_acc=vis_acc,
        mask=mask_scores(cm, P.MASK_CLASSES[domain]),
        n=int(len(data['image'])),
    )


def evaluate(ev, n: int = 2000, seed: int = EVAL_SEED, start: int = 0, degrade: dict | None = None) -> dict:
    """Scores on `n` held-out renders of ev.domain (indices start.., `seed`), optionally degraded
    (`alignjax.eval.data.degrade` keyword arguments)."""
    data = render_set(ev.domain, ev.resolution, seed, start, n)
    images = None if not degrade else _degrade(data['image'], seed=seed, **degrade)
    res = score(ev, data, images)
    res['degrade'] = dict(degrade or {})
    res['seed'], res['start'] = int(seed), int(start)
    return res


def readable_factors(domain: str, resolution: int = 32, threshold: float = 0.8, level: str = 'gan') -> tuple:
    """The factors the shipped evaluator of `domain` reads well enough to measure with: held-out R^2 (glasses:
    accuracy) >= `threshold` at degradation `level` (accuracy.json). The analyses mark the others 'not
    measured'."""
    acc = json.loads((ASSETS / f'{domain}_{int(resolution)}' / 'accuracy.json').read_text())[level]
    return tuple(k for k, v in acc['factors'].items() if v is not None and v >= threshold)


def summary_line(res: dict) -> str:
    f = res['factors']
    vals = [v for k, v in f.items() if v is not None and k != 'glasses']
    return (
        f'factor R2 median {np.median(vals):.3f} (min {min(vals):.3f}), glasses acc '
        f'{f["glasses"] if f["glasses"] is not None else float("nan"):.3f}, landmark PCK@0.1 '
        f'{res["landmarks"]["pck_0_1"]:.3f} (NME {res["landmarks"]["nme"]:.4f}), mIoU {res["mask"]["miou"]:.3f}'
    )


def accuracy_markdown(resolution: int = 32, levels=('clean', 'gan')) -> str:
    """The held-out accuracy table of the shipped evaluators (one column per domain and level)."""
    accs = {}
    for d in P.DOMAINS:
        p = ASSETS / f'{d}_{resolution}' / 'accuracy.json'
        if p.exists():
            accs[d] = json.loads(p.read_text())
    cols = [(d, lv) for d in accs for lv in levels]
    fmt = lambda v: 'n/a' if v is None else f'{v:.3f}'
    lines = ['| measure | ' + ' | '.join(f'{d} {lv}' for d, lv in cols) + ' |', '|---' * (len(cols) + 1) + '|']
    for name in FACTOR_NAMES:
        label = 'glasses (accuracy)' if name == 'glasses' else f'{name} R²'
        lines.append(f'| {label} | ' + ' | '.join(fmt(accs[d][lv]['factors'][name]) for d, lv in cols) + ' |')
    for key, label in (('nme', 'landmark NME'), ('pck_0_05', 'PCK@0.05'), ('pck_0_1', 'PCK@0.1')):
        lines.append(f'| {label} | ' + ' | '.join(fmt(accs[d][lv]['landmarks'][key]) for d, lv in cols) + ' |')
    lines.append('| visibility accuracy | ' + ' | '.join(fmt(accs[d][lv]['visible_acc']) for d, lv in cols) + ' |')
    lines.append('| mask mIoU | ' + ' | '.join(fmt(accs[d][lv]['mask']['miou']) for d, lv in cols) + ' |')
    return '\n'.join(lines)
