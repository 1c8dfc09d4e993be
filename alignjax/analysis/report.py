"""The StyleAlign analysis report over a parent and its children: report.md, report.html (one self-contained
file, figures inlined), results.json (every number with its settings and seeds) and PNG figures.

    python -m alignjax.analysis.report --out report/                   # the shipped zoo
    python -m alignjax.analysis.report --parent P --child toons=C1 --child animals=C2 --out report/ [--fast]

(the command line: alignjax/cli/report.py.) Library entry point: `build_report(parent, models, out, ...)`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import json
import platform
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from alignjax import vis
from alignjax.analysis import changes
from alignjax.analysis.changes import reset_hybrids, weight_changes
from alignjax.analysis.common import (
    FACTOR_NAMES,
    AnalysisError,
    NotAFineTuneWarning,
    as_labeller,
    check_labeller_fits,
    jsonable,
    mapping,
    pixel_features,
    sample_z,
    synth,
)
from alignjax.analysis.forgotten import forgotten_directions
from alignjax.analysis.morphs import morph_quality
from alignjax.analysis.pointwise import pointwise_alignment
from alignjax.analysis.semantic import localised_channels, semantic_alignment
from alignjax.analysis.translation import METHODS, invert_inputs, translation_methods
from alignjax.analysis.zeroshot import zero_shot
from alignjax.errors import AlignjaxError
from alignjax.eval.data import EVAL_SEED, render_set
from alignjax.eval.evaluator import EvaluatorError, load_evaluator

SECTIONS = ('changes', 'pointwise', 'semantic', 'localised', 'distant', 'forgotten', 'translation', 'zeroshot', 'morph')
TITLES = {
    'changes': '1. What changes in fine-tuning',
    'pointwise': '2. Point-wise alignment',
    'semantic': '3. Semantic alignment in W and S',
    'localised': '3b. Localised channels (gradient maps vs masks)',
    'distant': '4. Distant domains',
    'forgotten': '5. Forgotten directions',
    'translation': '6. Translation methods',
    'zeroshot': '7. Zero-shot tasks (parent supervision only)',
    'morph': '8. Morph quality',
}

FULL = dict(
    loc_n=16,
    ref_n=2000,
    reset_n=800,
    pw_n=1000,
    sem_n=2000,
    sem_transfer=128,
    sem_k=10,
    fg_n=2000,
    fg_edit=200,
    tr_n=48,
    tr_steps=200,
    tr_methods=None,
    zs_n=64,
    zs_steps=200,
    zs_train=4000,
    zs_ks=(1, 2, 4, 8),
    mq_n=8,
    mq_frames=24,
    sem_factors=None,
    reset_components=None,
    psi=1.0,
    swap_res=(8, 16),
)
FAST = dict(
    FULL,
    loc_n=2,
    ref_n=256,
    reset_n=96,
    pw_n=128,
    sem_n=256,
    sem_transfer=16,
    fg_n=256,
    fg_edit=16,
    tr_n=4,
    tr_steps=8,
    tr_methods=('W+',),
    zs_n=4,
    zs_steps=8,
    zs_train=256,
    zs_ks=(1, 8),
    mq_n=2,
    mq_frames=6,
    sem_factors=('yaw', 'hair_color', 'bg_value', 'glasses'),
    reset_components=('mapping', 'affine', 'conv_16'),
)


@dataclasses.dataclass
class Model:
    label: str
    gen: object
    domain: str | None  # procedural domain (None: unknown -> no evaluator)
    path: str = ''


# ----------------------------------------------------------------------------------------------------------
# Document: blocks rendered both to markdown and to HTML.


class Doc:
    def __init__(self, out: Path):
        self.out, self.blocks = out, []

    def h(self, level, text):
        self.blocks.append(('h', level, text))

    def p(self, text):
        self.blocks.append(('p', text))

    def table(self, header, rows):
        fmt = lambda v: (
            '—'
            if v is None or (isinstance(v, float) and not np.isfinite(v))
            else (
                f'{v:.3f}'
                if isinstance(v, float) and abs(v) < 100
                else (f'{v:.1f}' if isinstance(v, float) else str(v))
            )
        )
        self.blocks.append(('t', [str(x) for x in header], [[fmt(v) for v in r] for r in rows]))

    def image(self, name, img, caption=''):
        path = self.out / 'figures' / name
        vis.save_png(path, img)
        self.blocks.append(('img', f'figures/{name}', caption))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == 'h':
                out.append('#' * b[1] + ' ' + b[2])
            elif b[0] == 'p':
                out.append(b[1])
            elif b[0] == 't':
                out.append(
                    '| '
                    + ' | '.join(b[1])
                    + ' |\n'
                    + '|---' * len(b[1])
                    + '|\n'
                    + '\n'.join('| ' + ' | '.join(r) + ' |' for r in b[2])
                )
            else:
                out.append(f'![{b[2]}]({b[1]})' + (f'\n\n*{b[2]}*' if b[2] else ''))
        return '\n\n'.join(out) + '\n'

    def html(self, title) -> str:
        inline = lambda t: re.sub(
            r'\*\*(.+?)\*\*', r'<b>\1</b>', re.sub(r'`(.+?)`', r'<code>\1</code>', html.escape(t))
        )
        out = [
            f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>'
            'body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em;line-height:1.4}'
            'table{border-collapse:collapse;margin:0.5em 0;font-size:0.9em}td,th{border:1px solid #ccc;'
            'padding:2px 6px;text-align:right}th{background:#eee}td:first-child{text-align:left}'
            'img{image-rendering:pixelated;max-width:100%}code{background:#f4f4f4}</style></head><body>'
        ]
        for b in self.blocks:
            if b[0] == 'h':
                out.append(f'<h{b[1]}>{inline(b[2])}</h{b[1]}>')
            elif b[0] == 'p':
                items = [x for x in b[1].split('\n') if x.strip()]
                if items and all(x.lstrip().startswith('- ') for x in items):
                    out.append('<ul>' + ''.join(f'<li>{inline(x.lstrip()[2:])}</li>' for x in items) + '</ul>')
                else:
                    out.append(f'<p>{inline(b[1])}</p>')
            elif b[0] == 't':
                out.append(
                    '<table><tr>'
                    + ''.join(f'<th>{inline(x)}</th>' for x in b[1])
                    + '</tr>'
                    + ''.join('<tr>' + ''.join(f'<td>{inline(x)}</td>' for x in r) + '</tr>' for r in b[2])
                    + '</table>'
                )
            else:
                data = base64.b64encode((self.out / b[1]).read_bytes()).decode()
                out.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[2])}">'
                    f'<figcaption>{inline(b[2])}</figcaption></figure>'
                )
        return '\n'.join(out) + '</body></html>\n'


def _bars(values: dict, title: str = '', width: int = 420, row: int = 16) -> np.ndarray:
    """A horizontal bar chart (PIL; no matplotlib) of {label: value >= 0}."""
    from PIL import Image, ImageDraw

    labels = list(values)
    vmax = max([v for v in values.values() if v is not None and np.isfinite(v)] + [1e-9])
    h = row * (len(labels) + 1) + 8
    im = Image.new('RGB', (width, h), 'white')
    d = ImageDraw.Draw(im)
    d.text((4, 2), title, fill='black')
    for i, k in enumerate(labels):
        v = values[k] or 0.0
        y = row * (i + 1) + 4
        d.text((4, y), k[:18], fill='black')
        bw = int((width - 200) * (v / vmax if np.isfinite(v) else 0))
        d.rectangle([130, y + 2, 130 + max(bw, 1), y + row - 4], fill=(70, 110, 180))
        d.text((136 + bw, y), f'{v:.3f}', fill='black')
    return np.asarray(im)


def _label_rows(img_rows: list, labels: list, scale: int = 3) -> np.ndarray:
    """Stack rows of uint8 images [k, R, R, 3] (upscaled) with a text label left of each row."""
    from PIL import Image, ImageDraw

    rows = [np.repeat(np.repeat(vis.grid(r, cols=len(r), pad=1), scale, 0), scale, 1) for r in img_rows]
    wmax = max(r.shape[1] for r in rows)
    lw = 120
    canvas = Image.new('RGB', (lw + wmax, sum(r.shape[0] + 2 for r in rows)), 'white')
    d = ImageDraw.Draw(canvas)
    y = 0
    for r, lab in zip(rows, labels):
        canvas.paste(Image.fromarray(r), (lw, y))
        d.text((4, y + r.shape[0] // 2 - 5), lab[:19], fill='black')
        y += r.shape[0] + 2
    return np.asarray(canvas)


# ----------------------------------------------------------------------------------------------------------
# The report.


def _evaluator(domain, res, use):
    if not use or domain is None:
        return None
    try:
        return as_labeller(load_evaluator(domain, res))
    except (EvaluatorError, FileNotFoundError):
        return None


def build_report(
    parent: Model,
    models: list[Model],
    out,
    *,
    fast: bool = False,
    sections=None,
    seed: int = 0,
    evaluators: bool = True,
    progress: bool = True,
    command: str = '',
    labellers: Mapping[str, Any] | None = None,
) -> dict:
    """Run every analysis the inputs allow and write out/{report.md, report.html, results.json, figures/}.
    `models`: the children (and any grandchild). `labellers`: {model label: Evaluator or function images ->
    dict (the Evaluator contract)} for models of any domain, used instead of the shipped evaluators (a user's
    own pair: point-wise and semantic alignment, forgotten directions and translation scores with their
    labels). Returns the results dict."""
    from tqdm.auto import tqdm

    out = Path(out)
    (out / 'figures').mkdir(parents=True, exist_ok=True)
    cfg = dict(FAST if fast else FULL)
    sections = list(sections or SECTIONS)
    res = parent.gen.resolution
    t_start = time.time()
    labellers = dict(labellers or {})
    unknown = sorted(set(labellers) - {m.label for m in [parent] + models})
    if unknown:
        raise AnalysisError(
            f'labellers given for {unknown}, which are not among the models {[m.label for m in [parent] + models]}'
        )
    labs = {
        m.label: (
            as_labeller(labellers[m.label], m.domain, res, f'{m.label} labeller')
            if m.label in labellers
            else _evaluator(m.domain, res, evaluators)
        )
        for m in [parent] + models
    }
    for m in [parent] + models:
        if labs[m.label] is not None:
            check_labeller_fits(labs[m.label], m.gen, f'labeller of {m.label}')
        if m.label in labellers:  # a user's labeller breaking the contract fails here, before any section runs
            labs[m.label](synth(m.gen, mapping(m.gen, sample_z(2, m.gen.z_dim, seed))))
    pl = labs[parent.label]
    # the children of the point-wise / semantic / translation / zero-shot / morph sections: another domain
    kids = [m for m in models if m.domain != parent.domain or m.domain is None]
    results = dict(
        settings=dict(cfg, fast=fast, seed=seed, sections=sections, evaluators=evaluators),
        command=command,
        models={
            m.label: dict(
                domain=m.domain,
                path=m.path,
                evaluator=labs[m.label] is not None,
                labeller=None if labs[m.label] is None else labs[m.label].name,
            )
            for m in [parent] + models
        },
        machine=f'{platform.node()} {platform.machine()} {platform.processor() or ""}'.strip(),
        started=datetime.datetime.now().isoformat(timespec='seconds'),
        sections={},
        skipped={},
        timings={},
        warnings=[],
    )
    doc = Doc(out)
    doc.h(1, 'StyleAlign analyses' + (' (fast settings)' if fast else ''))
    if labellers:
        rest = "the benchmark's evaluators" if evaluators else 'label-free parts'
        source = f"Labels from the user's labellers for {', '.join(f'`{k}`' for k in labellers)}; {rest} for the rest."
    elif evaluators:
        source = (
            "Labels come from the benchmark's domain evaluators (`alignjax.eval`); only the factors each "
            'evaluator reads with held-out R² ≥ 0.8 are measured (`readable_factors`), the rest are marked not '
            'measured.'
        )
    else:
        source = 'Run without evaluators: label-free parts only.'
    doc.p(
        f'Parent `{parent.label}` ({parent.domain or "unknown domain"}, {res}×{res}); models: '
        + ', '.join(f'`{m.label}` ({m.domain or "unknown domain"})' for m in models)
        + '. '
        + source
    )
    refs = {}

    def ref(m):
        if m.label not in refs:
            refs[m.label] = changes.reference_features(labs[m.label], m.domain, cfg['ref_n'])
        return refs[m.label]

    def skip(sec, why):
        results['skipped'][sec] = why
        doc.p(f'*Skipped: {why}*')

    bar = tqdm(sections, desc='report', disable=not progress, dynamic_ncols=True)
    for sec in bar:
        bar.set_postfix_str(sec)
        t0 = time.time()
        doc.h(2, TITLES[sec])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', NotAFineTuneWarning)
            try:
                data = SECTION_FNS[sec](doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results)
            except Exception as e:  # one failing analysis must not lose the others: recorded and shown
                if not isinstance(e, (AlignjaxError, ValueError)):
                    raise
                data = None
                skip(sec, f'error: {e}')
        for w in caught:
            if issubclass(w.category, NotAFineTuneWarning):
                msg = str(w.message)
                if msg not in results['warnings']:
                    results['warnings'].append(msg)
                    print(f'warning: {msg}')
        if data is not None:
            results['sections'][sec] = data
        results['timings'][sec] = round(time.time() - t0, 1)
    results['timings']['total'] = round(time.time() - t_start, 1)
    if results['warnings']:
        doc.h(2, 'Warnings')
        doc.p('\n'.join(f'- {w}' for w in results['warnings']))
    doc.h(2, 'Settings and reproduction')
    doc.p(
        f'Command: `{command or "build_report(...)"}`. Seed {seed}; every sample size, step count and seed is '
        f'in `results.json` (`settings`). Wall time {results["timings"]["total"]:.0f} s on {results["machine"]} '
        f'(per section: ' + ', '.join(f'{k} {v:.0f} s' for k, v in results['timings'].items() if k != 'total') + ').'
    )
    (out / 'results.json').write_text(json.dumps(jsonable(results), indent=1))
    (out / 'report.md').write_text(doc.markdown())
    (out / 'report.html').write_text(doc.html('StyleAlign analyses'))
    return results


# ----------------------------------------------------------------------------------------------------------
# Sections. Each returns its JSON-able data (or None after `skip`).


def _changes(doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results):
    data = {}
    rows = []
    for m in models:
        wc = weight_changes(parent.gen, m.gen)
        data[m.label] = dict(weights=jsonable(wc))
        rows.append([m.label] + list(wc.components.values()) + [wc.overall])
    comps = list(weight_changes(parent.gen, models[0].gen).components)
    doc.p(
        'Relative change ‖θ_child − θ_parent‖ / ‖θ_parent‖ per component (conv_R: the synthesis conv weights '
        'at resolution R; affine: the StyleSpace affine maps; noise: strengths and const maps).'
    )
    doc.table(['model'] + comps + ['synthesis (all)'], rows)
    for m in models:
        doc.image(
            f'changes_{m.label}.png',
            _bars(data[m.label]['weights']['layers'], f'relative change per layer: {m.label}'),
            f'Per-layer relative change, {m.label}',
        )
    # FD_eval to the child domain: its labeller and held-out renders of it (a procedural domain)
    withlab = [m for m in kids if labs[m.label] is not None and m.domain is not None]
    if not withlab:
        doc.p(
            '*Reset-to-parent hybrids skipped: they are scored by FD_eval against held-out renders of the child '
            'domain, which needs a procedural child domain and its labeller.*'
        )
        results['skipped']['changes/reset'] = 'no procedural child domain with a labeller'
        return data
    doc.p(
        'Reset-to-parent hybrids: the child with one component taken back from the parent, scored by FD_eval '
        "to the child domain (in the child-domain evaluator's features; lower is closer to the domain). "
        '"lost" = (FD_hybrid − FD_child) / (FD_parent − FD_child): the share of the child\'s look lost '
        '(0: nothing, 1: all); "pixel" = mean pixel change from the child\'s image for the same z, relative '
        f"to the parent's. {cfg['reset_n']} samples (ψ {cfg['psi']}, seed {seed}) against "
        f'{cfg["ref_n"]} held-out renders.'
    )
    for m in withlab:
        rs = reset_hybrids(
            parent.gen,
            m.gen,
            labs[m.label],
            ref(m),
            n=cfg['reset_n'],
            seed=seed,
            psi=cfg['psi'],
            components=cfg['reset_components'],
        )
        data[m.label]['reset'] = jsonable(rs)
        doc.h(3, f'{m.label}: FD_eval child {rs.fd_child:.2f}, parent {rs.fd_parent:.2f}')
        doc.table(
            ['reset to parent', 'FD_eval', 'lost', 'pixel'],
            [[c, v['fd'], v['look_lost'], v['pixel_change']] for c, v in rs.hybrids.items()],
        )
        names = ['child', 'parent'] + list(rs.hybrids)
        doc.image(
            f'reset_{m.label}.png',
            _label_rows([rs.examples[k] for k in names], ['child', 'parent'] + [f'reset {c}' for c in rs.hybrids]),
            f'{m.label}: the child, the parent and each reset hybrid (same z)',
        )
    return data


def _pointwise(doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results):
    withlab = [m for m in kids if labs[m.label] is not None]
    if pl is None or not withlab:
        return skip('pointwise', 'needs a labeller of the parent and of a child domain (no evaluator)')
    data, allf = {}, []
    for m in withlab:
        pw = pointwise_alignment(parent.gen, m.gen, pl, labs[m.label], n=cfg['pw_n'], seed=seed, psi=cfg['psi'])
        data[m.label] = jsonable(pw)
        allf += [f for f in pw.factors if f not in allf]
    doc.p(
        f'The same z through parent and child ({cfg["pw_n"]} samples, ψ {cfg["psi"]}, seed {seed}); each '
        "image read by its own domain's evaluator. R² = 1 − MSE/var of the child's reading against the "
        'parent\'s (can be negative), r = Pearson; glasses: share of equal decisions. "z": each model maps z; '
        '"w": the parent\'s w through the child\'s synthesis. — = not measured (a ruler does not read it).'
    )
    rows = []
    for f in [x for x in FACTOR_NAMES if x in allf]:
        row = [f]
        for m in withlab:
            v = data[m.label]['factors'].get(f)
            row += (
                [None, None]
                if v is None
                else ([v['z']['accuracy'], v['z']['pearson']] if f == 'glasses' else [v['z']['r2'], v['z']['pearson']])
            )
        rows.append(row)
    rows.append(
        ['**mean R² (z)**']
        + sum([[data[m.label]['mean_r2']['z'], data[m.label]['mean_pearson']['z']] for m in withlab], [])
    )
    rows.append(
        ['mean R² (w)']
        + sum([[data[m.label]['mean_r2']['w'], data[m.label]['mean_pearson']['w']] for m in withlab], [])
    )
    lm = []
    for m in withlab:
        x = data[m.label]['landmarks']
        lm += [x['z']['px'], x['z']['nme']] if x else [None, None]
    rows.append(['landmark error px / NME'] + lm)
    doc.table(['factor'] + sum([[f'{m.label} R²', f'{m.label} r'] for m in withlab], []), rows)
    return data


def _semantic(doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results):
    withlab = [m for m in kids if labs[m.label] is not None]
    if pl is None or not withlab:
        return skip('semantic', 'needs labellers of the parent and child domains (no evaluator)')
    doc.p(
        f'Directions and channels found in parent and child independently ({cfg["sem_n"]} samples each, same z, '
        f'each labelled by its own evaluator). W: ridge regression of each factor on w; "cos" = cosine of '
        f"the parent's and the child's directions. S: StyleSpace positive-example relevance (top 10% of "
        f'samples by the factor); top-{cfg["sem_k"]} channel IoU and Spearman ρ of all '
        f"{len(parent.gen.style_names)}-layer channel relevances. Transfer: the parent's W direction (or its "
        f"top S channel) moved ±2 std in both models; slope ratio = the child's factor change / the "
        f"parent's ({cfg['sem_transfer']} samples; 1 = fully transferred)."
    )
    data = {}
    for m in withlab:
        sem = semantic_alignment(
            parent.gen,
            m.gen,
            pl,
            labs[m.label],
            n=cfg['sem_n'],
            seed=seed,
            k=cfg['sem_k'],
            psi=cfg['psi'],
            transfer_n=cfg['sem_transfer'],
            factors=cfg['sem_factors'],
            examples=4,
        )
        data[m.label] = jsonable(sem)
        doc.h(
            3,
            f'{m.label}: mean top-{sem.k} IoU {sem.summary["s_iou"]:.2f}, mean W cos '
            f'{sem.summary["w_cos"]:.2f}, median W slope ratio {sem.summary["w_slope_ratio_median"]:.2f}',
        )
        doc.table(
            [
                'factor',
                'W cos',
                'W fit R² parent',
                'W fit R² child',
                'W slope ratio',
                'S IoU',
                'S ρ',
                'S top channel',
                'S slope ratio',
            ],
            [
                [
                    f,
                    v['w_cos'],
                    v['w_fit_r2_parent'],
                    v['w_fit_r2_child'],
                    v['w_slope_ratio'],
                    v['s_iou'],
                    v['s_spearman'],
                    v['s_channel'],
                    v['s_slope_ratio'],
                ]
                for f, v in sem.factors.items()
            ],
        )
        show = [f for f in ('hair_color', 'yaw', 'bg_value') if f in sem.examples][:2]
        if show:
            rows, labels = [], []
            for f in show:
                e = sem.examples[f]
                rows += [e['parent'], e['child']]
                labels += [f'{f}: parent', f'{f}: {m.label}']
            doc.image(
                f'directions_{m.label}.png',
                _label_rows(rows, labels),
                f"The parent's W direction applied in parent and {m.label}: −2σ (left 4), 0, +2σ (right 4)",
            )
    return data


def _localised(doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results):
    withlab = [m for m in kids if labs[m.label] is not None]
    if pl is None or not withlab:
        return skip('localised', 'needs the masks of labellers of the parent and child domains (no evaluator)')
    doc.p(
        f"StyleSpace's localised channels: for every S channel, the gradient map |∂image/∂s_c| "
        f"({cfg['loc_n']} samples); per mask class (the model's own evaluator's predicted masks), the share of "
        'the gradient energy inside the class ÷ √(area share of the class) (the area discount). Top-10 channels '
        'per class in parent and child independently; IoU and Spearman ρ of the scores. Classes matched by '
        'name; classes under 0.5% of the image are not measured.'
    )
    data, rows = {}, []
    for m in withlab:
        try:
            lr = localised_channels(parent.gen, m.gen, pl, labs[m.label], n=cfg['loc_n'], seed=seed)
        except ValueError as e:
            data[m.label] = dict(skipped=str(e))
            continue
        data[m.label] = jsonable(lr)
        for c, v in lr.classes.items():
            rows.append([m.label, c, v['iou'], v['spearman']])
        if lr.classes:
            rows.append([m.label, '**mean**', lr.mean_iou, None])
        else:
            rows.append([m.label, '(no shared mask class)', None, None])
    if not rows:
        return skip('localised', 'no child domain shares mask classes with the parent')
    doc.table(['child', 'class', 'top-10 IoU', 'Spearman ρ'], rows)
    return data


def _distant(doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results):
    pw = results['sections'].get('pointwise', {})
    sem = results['sections'].get('semantic', {})
    far = [m for m in kids if m.domain == 'buildings']
    if not far:
        return skip('distant', 'no distant child (a buildings model) among the models')
    if far[0].label not in pw:
        return skip('distant', 'needs the point-wise table of the distant child from section 2')
    m = far[0]
    p = pw[m.label]['factors']
    s = sem.get(m.label, {}).get('factors', {})
    near = [k.label for k in kids if k.label in pw and k.label != m.label]
    rows = []
    for f, v in p.items():
        r = v['z']['accuracy'] if f == 'glasses' else v['z']['r2']
        others = [pw[n]['factors'].get(f, {}).get('z', {}) for n in near]
        rows.append(
            [f, r, v['z']['pearson'], s.get(f, {}).get('w_slope_ratio'), s.get(f, {}).get('s_iou')]
            + [o.get('pearson') for o in others]
        )
    survive = [f for f, v in p.items() if v['z']['pearson'] is not None and v['z']['pearson'] >= 0.7]
    lost = [f for f, v in p.items() if v['z']['pearson'] is not None and v['z']['pearson'] < 0.4]
    doc.p(
        f'`{m.label}` is the distant child: only layout and colour correspond to faces. From the tables of '
        f'sections 2–3 (z path): **survive** (Pearson r ≥ 0.7): {", ".join(survive) or "none"}; **lost** '
        f'(r < 0.4): {", ".join(lost) or "none"}; the rest in between.'
    )
    doc.table(['factor', 'R²', 'r', 'W slope ratio', 'S IoU'] + [f'r ({n})' for n in near], rows)
    return dict(child=m.label, survive=survive, lost=lost)


def _forgotten(doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results):
    if pl is None:
        return skip('forgotten', "the glasses direction is found from the parent's labels (no parent evaluator)")
    ms = [parent] + [m for m in models if labs[m.label] is not None]
    fg = forgotten_directions(
        parent.gen,
        {m.label: m.gen for m in ms},
        pl,
        {m.label: labs[m.label] for m in ms},
        n=cfg['fg_n'],
        edit_n=cfg['fg_edit'],
        seed=seed,
        psi=cfg['psi'],
        examples=6,
    )
    doc.p(
        f"The parent's glasses direction d (mean w of glasses-wearing samples minus the others', from "
        f'{cfg["fg_n"]} parent samples labelled by the faces evaluator: {fg.parent_glasses_rate:.0%} wear '
        f"glasses; ‖d‖ = {fg.direction_norm:.2f}) added to each model's own w ({cfg['fg_edit']} samples). "
        'Ratios: the image change it causes ÷ that of a random direction of the same norm, in pixels and in '
        "the model's own evaluator features (1 = nothing special). Glasses: change of the glasses "
        'probability and share of glasses-free samples that gain glasses, where the domain expresses glasses. '
        f'Control: the {fg.control} regression direction at the same norm.'
    )
    rows = []
    for name, v in fg.models.items():
        g, c = v['glasses'], v['control']
        rows.append(
            [
                name,
                g['pixel_ratio'],
                g['feature_ratio'],
                g['glasses_prob_change'],
                g['glasses_flip_rate'],
                c['pixel_ratio'],
                c['feature_ratio'],
                c['factor_change'],
            ]
        )
    doc.table(
        [
            'model',
            'glasses: pixel ratio',
            'feature ratio',
            'Δ P(glasses)',
            'gain rate',
            f'{fg.control}: pixel ratio',
            'feature ratio',
            f'Δ {fg.control}',
        ],
        rows,
    )
    imgs, labels = [], []
    for name, e in fg.examples.items():
        imgs += [e['base'], e['glasses']]
        labels += [f'{name}', f'{name} + d']
    doc.image('forgotten.png', _label_rows(imgs, labels), "Each model without and with the parent's glasses direction")
    return jsonable(fg)


def _translation(doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results):
    if parent.domain is None or not kids:
        return skip(
            'translation',
            'the inputs are held-out renders of the parent domain: needs a procedural parent domain and a child',
        )
    rd = render_set(parent.domain, parent.gen.resolution, EVAL_SEED, 10000, cfg['tr_n'])
    methods = list(cfg['tr_methods'] or METHODS)
    inv = invert_inputs(parent.gen, rd['image'], steps=cfg['tr_steps'], methods=methods, seed=seed, progress=False)
    doc.p(
        f'{cfg["tr_n"]} held-out renders of {parent.domain} (EVAL_SEED {EVAL_SEED}, indices 10000+) inverted in '
        f'the parent ({cfg["tr_steps"]} steps, pixel+SSIM loss) and decoded by the child; the layer-swap baseline '
        f"(the child's blocks ≤ R, the parent's above) renders the W+ latents. Factor R²: the input's true "
        "factors vs the child evaluator's reading of the translation (glasses: accuracy); NME against the "
        "input's landmarks; FD_eval to the child domain (small sample: compare rows, not absolute values); "
        "PSNR of the parent's reconstruction."
    )
    data = {}
    for m in kids:
        lab = labs[m.label]
        if lab is None and m.domain is not None:
            lab = pixel_features(parent.gen.resolution)
        refm = None
        if lab is not None and m.domain is not None:
            refm = ref(m) if labs[m.label] is not None else changes.reference_features(lab, m.domain, cfg['ref_n'])
        tr = translation_methods(
            parent.gen,
            m.gen,
            inv,
            rd,
            lab,
            reference=refm,
            swap_res=cfg['swap_res'],
            steps=cfg['tr_steps'],
            input_domain=parent.domain,
        )
        data[m.label] = jsonable(tr)
        doc.h(3, m.label)
        doc.table(
            ['method', 'mean factor R²', 'glasses acc', 'landmark NME', 'FD_eval', 'recon PSNR'],
            [
                [
                    k,
                    v.get('mean_r2'),
                    (v.get('factor_r2') or {}).get('glasses'),
                    v.get('landmark_nme'),
                    v.get('fd_eval'),
                    v['recon_psnr'],
                ]
                for k, v in tr.methods.items()
            ],
        )
        factors = [f for f in next(iter(tr.methods.values())).get('factor_r2') or {}]
        if factors:
            doc.p(f"{m.label}, per factor: R² of the true input factor vs the child's reading (glasses: accuracy).")
            doc.table(
                ['factor'] + list(tr.methods),
                [[f] + [(v.get('factor_r2') or {}).get(f) for v in tr.methods.values()] for f in factors],
            )
        keys = ['input'] + list(tr.methods)
        doc.image(
            f'translation_{m.label}.png',
            _label_rows([tr.examples[k] for k in keys], keys),
            f'Translations into {m.label}',
        )
    return data


def _zeroshot(doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results):
    targets = [m for m in kids if m.domain is not None]
    if pl is None or not targets:
        return skip('zeroshot', "needs the parent's labeller and held-out renders of a procedural child domain")
    doc.p(
        f'On {cfg["zs_n"]} held-out renders of each child domain (ground truth known), inverted in the child '
        f'({cfg["zs_steps"]} steps, in W+ and in W). Attributes: ridge models on the first k W+ layers fit on '
        f'{cfg["zs_train"]} parent samples labelled by the parent evaluator (parent supervision only), applied '
        'to the W+ codes (k swept) and to the W codes ("W"); the best is shown, and W+ with k=8 (all layers). '
        '*naive*: the parent evaluator on the child images; *oracle*: the child-domain evaluator (same '
        'network, child labels), and the same latent models fit on child labels (oracle latent). Landmarks and '
        'masks: the child inversion decoded by the parent, read by the parent evaluator (mask classes mapped by '
        'name).'
    )
    data, rows, drows = {}, [], []
    for m in targets:
        zs = zero_shot(
            parent.gen,
            m.gen,
            pl,
            m.domain,
            oracle_labeller=labs[m.label],
            n=cfg['zs_n'],
            steps=cfg['zs_steps'],
            ks=cfg['zs_ks'],
            train_n=cfg['zs_train'],
            seed=seed,
            psi=cfg['psi'],
        )
        data[m.label] = jsonable(zs)
        a = zs.attributes
        k = zs.best
        ol = a['oracle_latent'].get(k, {})
        wp = a['zero_shot'].get('W+ k=8', a['zero_shot'][k])
        rows.append(
            [
                m.label,
                k,
                a['zero_shot'][k]['mean_r2'],
                a['zero_shot'][k]['glasses_acc'],
                wp['mean_r2'],
                a['naive']['mean_r2'],
                a['naive']['glasses_acc'],
                ol.get('mean_r2'),
                a.get('oracle', {}).get('mean_r2'),
                a.get('oracle', {}).get('glasses_acc'),
                zs.inversion_psnr,
            ]
        )
        for kind in ('zero_shot', 'naive', 'oracle'):
            d = zs.dense.get(kind) or {}
            drows.append(
                [m.label, kind.replace('_', '-'), d.get('pck_0_05'), d.get('pck_0_1'), d.get('nme'), d.get('miou')]
            )
        doc.image(
            f'zeroshot_{m.label}.png',
            _label_rows(
                [zs.examples['input'], zs.examples['recon'], zs.examples['through_parent']],
                ['child render', 'child inversion', 'decoded by parent'],
            ),
            f'Zero-shot through the parent: {m.label}',
        )
    doc.h(3, 'Attributes (mean R² over measured factors; glasses accuracy)')
    doc.table(
        [
            'domain',
            'best latent model',
            'zero-shot R²',
            'zero-shot glasses',
            'zero-shot R² (W+ k=8)',
            'naive R²',
            'naive glasses',
            'oracle latent R²',
            'oracle R²',
            'oracle glasses',
            'inversion PSNR',
        ],
        rows,
    )
    doc.h(3, 'Landmarks and segmentation')
    doc.table(['domain', 'method', 'PCK@0.05', 'PCK@0.1', 'NME', 'mIoU'], drows)
    return data


def _morph(doc, cfg, parent, models, kids, labs, pl, ref, skip, seed, results):
    if not kids:
        return skip('morph', 'no child')
    doc.p(
        f'{cfg["mq_n"]} morphs per child, {cfg["mq_frames"]} frames, from a parent sample to a child sample '
        "(ψ 0.7). Endpoint error: feature distance of the last frame to the child's target ÷ the source–target "
        'distance (0 = exact). Smoothness: max/mean of per-step feature distances (1 = uniform steps). '
        "Features: the child-domain evaluator's (pixel projection without one)."
    )
    data, rows = {}, []
    for m in kids:
        lab = labs[m.label] or pixel_features(parent.gen.resolution)
        mq = morph_quality(parent.gen, m.gen, lab, n=cfg['mq_n'], frames=cfg['mq_frames'], seed=seed)
        data[m.label] = jsonable(mq)
        for meth, v in mq.methods.items():
            rows.append(
                [
                    m.label,
                    meth,
                    v['endpoint_end'],
                    v['endpoint_end_pixel'],
                    v['smooth_max_mean'],
                    v['pixel_smooth_max_mean'],
                ]
            )
        doc.image(
            f'morph_{m.label}.png',
            _label_rows([mq.examples[k][:: max(1, mq.frames // 8)] for k in mq.examples], list(mq.examples)),
            f'Morphs into {m.label}',
        )
    doc.table(
        ['child', 'method', 'end error (features)', 'end error (pixels)', 'smoothness max/mean', 'pixel max/mean'], rows
    )
    return data


SECTION_FNS = dict(
    changes=_changes,
    pointwise=_pointwise,
    semantic=_semantic,
    localised=_localised,
    distant=_distant,
    forgotten=_forgotten,
    translation=_translation,
    zeroshot=_zeroshot,
    morph=_morph,
)


if __name__ == '__main__':  # python -m alignjax.analysis.report
    from alignjax.cli.report import main

    raise SystemExit(main())
