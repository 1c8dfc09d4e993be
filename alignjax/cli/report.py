"""The StyleAlign analysis report: what changes in fine-tuning, point-wise and semantic alignment (W, S),
distant domains, forgotten directions, translation methods, zero-shot tasks and morph quality, scored by the
benchmark's evaluators.

    alignjax-report --out report/          # the shipped zoo (also python -m alignjax.analysis.report)
    alignjax-report --parent P --child toons=C1 --child animals=C2 --out report/ [--fast]

--child LABEL[:DOMAIN]=CKPT (repeatable): DOMAIN defaults to LABEL when it is a procedural domain (faces,
toons, animals, buildings); a child of another domain gets the label-free analyses only. Writes
OUT/report.md, OUT/report.html (self-contained), OUT/results.json and OUT/figures/*.png. --fast: tiny
sample sizes (about 2 minutes on 2 CPU cores), for checking a setup.

--labeller LABEL=MODULE:NAME (repeatable; LABEL: parent or a child's label) labels that model's images with your
own function (images uint8 [N, H, W, 3] -> {'factors': [N, 18], optional 'landmarks', 'visible', 'mask_logits',
'features'}: the Evaluator contract of alignjax.analysis) or Evaluator, imported from your module (on
PYTHONPATH), instead of the shipped evaluators: the label-using analyses then run for your own domains.
"""

from __future__ import annotations

import importlib
import shlex
import sys
import warnings

from absl import flags

from alignjax.analysis.common import AnalysisError, NotAFineTuneWarning, check_pair
from alignjax.analysis.report import SECTIONS, Model, build_report
from alignjax.cli._common import CliError, Command, check_outdir, entry
from alignjax.data import procedural as P
from alignjax.errors import AlignjaxError
from alignjax.eval.zoo import zoo_path
from alignjax.io.checkpoint import load_checkpoint

ZOO_CHILDREN = (('toons', 'toons'), ('animals', 'animals'), ('buildings', 'buildings'), ('animals_faces', 'faces'))


def command() -> Command:
    cmd = Command('alignjax-report', __doc__)
    fv = cmd.fv
    flags.DEFINE_string('parent', None, 'parent checkpoint (default: the shipped zoo parent)', flag_values=fv)
    flags.DEFINE_string(
        'parent-domain', 'faces', 'procedural domain of the parent (default faces; "none": unknown)', flag_values=fv
    )
    flags.DEFINE_multi_string(
        'child',
        [],
        'LABEL[:DOMAIN]=CKPT, repeatable (default: the zoo toons, animals, buildings and animals_faces)',
        flag_values=fv,
    )
    flags.DEFINE_string('out', None, 'output folder', flag_values=fv)
    flags.DEFINE_string('net', 'G_ema', "generator in the checkpoints: 'G_ema' (default) or 'G'", flag_values=fv)
    flags.DEFINE_boolean('fast', False, 'tiny sample sizes (a smoke run, ~2 min)', flag_values=fv)
    flags.DEFINE_string(
        'sections', ','.join(SECTIONS), f'comma list of sections to run (of {",".join(SECTIONS)})', flag_values=fv
    )
    flags.DEFINE_integer('seed', 0, 'seed of every sample set', flag_values=fv)
    flags.DEFINE_boolean(
        'evaluators',
        True,
        'use the shipped domain evaluators (--noevaluators: label-free parts '
        'only, as for checkpoints of unknown domains)',
        flag_values=fv,
    )
    flags.DEFINE_multi_string(
        'labeller',
        [],
        "LABEL=MODULE:NAME, repeatable: your labelling function or Evaluator for model LABEL ('parent' or a "
        'child label), instead of the shipped evaluators',
        flag_values=fv,
    )
    flags.DEFINE_boolean('progress', True, 'progress bars (--noprogress / --no-progress to hide)', flag_values=fv)
    flags.mark_flags_as_required(['out'], flag_values=fv)
    return cmd


def _domain(d):
    if d in (None, '', 'none'):
        return None
    if d not in P.DOMAINS:
        raise CliError(f'domain {d!r} is not a procedural domain ({", ".join(P.DOMAINS)}, or none)')
    return d


def _load(path, net, what):
    try:
        return load_checkpoint(path).generator(net)
    except (AlignjaxError, OSError) as e:  # (OSError: a file that cannot be read)
        raise CliError(f'{what} {path}: {e}') from None


def _check_child(parent, child, what: str):
    """CliError unless `child` has the parent's architecture; a `warning:` line when it does not look
    fine-tuned from it (its alignment numbers would compare unrelated models)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', NotAFineTuneWarning)
        try:
            check_pair(parent, child, what)
        except AnalysisError as e:
            raise CliError(str(e)) from None
    for w in caught:
        if issubclass(w.category, NotAFineTuneWarning):
            print(f'warning: {w.message}', file=sys.stderr)


def _labeller(spec: str):
    """LABEL=MODULE:NAME -> (LABEL, the object). The module is the user's own code, named on the command line
    (as a Python import, never read from a checkpoint)."""
    label, sep, target = spec.partition('=')
    mod, colon, name = target.partition(':')
    if not sep or not label or not colon or not mod or not name:
        raise CliError(f'--labeller {spec!r}: write LABEL=MODULE:NAME (e.g. parent=my_labels:faces)')
    try:
        obj = importlib.import_module(mod)
    except ImportError as e:
        raise CliError(f'--labeller {spec!r}: cannot import {mod!r}: {e}') from None
    for part in name.split('.'):
        if not hasattr(obj, part):
            raise CliError(f'--labeller {spec!r}: {mod!r} has no {name!r}')
        obj = getattr(obj, part)
    if not callable(obj):
        raise CliError(f'--labeller {spec!r}: {mod}:{name} is a {type(obj).__name__}, not a function or Evaluator')
    return label, obj


@entry
def main(argv=None):
    """Exit 0, or 1 with one `error: ...` line."""
    raw = sys.argv[1:] if argv is None else list(argv)
    raw = ['--noprogress' if a == '--no-progress' else a for a in raw]
    a = command().parse(raw)
    sections = [s.strip() for s in a.sections.split(',') if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad or not sections:
        raise CliError(f'--sections {a.sections!r}: unknown {bad or "(empty)"}; choose from {",".join(SECTIONS)}')
    out = check_outdir(a.out, '--out')
    ppath = a.parent or str(zoo_path('parent'))
    parent = Model('parent', _load(ppath, a.net, '--parent'), _domain(a.parent_domain), ppath)
    specs = []
    if a.child:
        for c in a.child:
            label, sep, path = c.partition('=')
            if not sep or not label or not path:
                raise CliError(f'--child {c!r}: write LABEL[:DOMAIN]=CHECKPOINT (e.g. toons=runs/toons/final)')
            label, _, dom = label.partition(':')
            dom = dom or (label if label in P.DOMAINS else 'none')
            specs.append((label, _domain(dom), path))
    else:
        specs = [(lab, dom, str(zoo_path(lab))) for lab, dom in ZOO_CHILDREN]
    labels = [s[0] for s in specs]
    if len(set(labels)) != len(labels) or 'parent' in labels:
        raise CliError(f'--child labels must be distinct and not "parent": {labels}')
    models = []
    for label, dom, path in specs:
        g = _load(path, a.net, f'--child {label}')
        _check_child(parent.gen, g, f'--parent {ppath} and --child {label} ({path})')
        models.append(Model(label, g, dom, path))
    labellers = dict(_labeller(spec) for spec in a.labeller)
    bad = sorted(set(labellers) - {'parent', *labels})
    if bad:
        raise CliError(f'--labeller for {bad}: not a model label (parent, {", ".join(labels)})')
    cmdline = 'python -m alignjax.analysis.report ' + ' '.join(shlex.quote(x) for x in raw)
    res = build_report(
        parent,
        models,
        out,
        fast=a.fast,
        sections=sections,
        seed=a.seed,
        evaluators=a.evaluators,
        progress=a.progress,
        command=cmdline,
        labellers=labellers,
    )
    for sec, why in res['skipped'].items():
        print(f'skipped {sec}: {why}')
    print(f'wrote {out / "report.md"}, {out / "report.html"}, {out / "results.json"} ({res["timings"]["total"]:.0f} s)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
