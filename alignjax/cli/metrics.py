"""Distribution metrics of a checkpoint against a dataset (like NVlabs calc_metrics).

    alignjax-metrics --ckpt runs/toons/final --data 'proc:toons?n=20000' \\
        --metrics fd_eval10k,kid_eval10k,pr_eval10k --out metrics.json
    alignjax-metrics --ckpt ffhq.pkl --data zip:ffhq256.zip --metrics fid50k \\
        --inception pt_inception-2015-12-05-6726825d.pth --out fid.json
    python -m alignjax.metrics ...          # the same command line

Metric names: <metric>_<extractor><N>[k] with metric fd | kid | pr and extractor eval (domain evaluator) |
inception (FID Inception-v3, needs --inception) | pix (random pixel projection, plumbing checks only); fid<N>[k]
is fd_inception<N>[k]. N generated images (psi 1, fixed seeds) against the dataset's first N images.
--evaluator: a domain (faces, toons, animals, buildings) or a saved evaluator directory; proc: datasets default
to their own domain. Writes --out as JSON: {"results": {name: value}, "ckpt", "data", "seconds", ...}.
A bad input prints one `error:` line and exits 2. The library: `alignjax.metrics.compute_metrics`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from absl import flags

from alignjax.cli._common import CliError, Command, debug_requested, entry, fail, message
from alignjax.data import make_dataset
from alignjax.errors import AlignjaxError, MissingEntryError
from alignjax.metrics import compute
from alignjax.model import load_checkpoint

cmd = Command('alignjax-metrics', __doc__)
flags.DEFINE_string('ckpt', None, 'NVlabs .pkl, rosinality .pt, TF .pkl, or our checkpoint dir', flag_values=cmd.fv)
flags.DEFINE_string('data', None, 'real images: folder:, zip:, tfds:, proc: spec or a path', flag_values=cmd.fv)
flags.DEFINE_string('metrics', 'fd_eval10k,kid_eval10k,pr_eval10k', 'comma-separated metric names', flag_values=cmd.fv)
flags.DEFINE_string(
    'inception', None, "pytorch-fid's pt_inception-2015-12-05-6726825d.pth (fid, *_inception)", flag_values=cmd.fv
)
flags.DEFINE_string('evaluator', None, 'domain or evaluator directory for *_eval metrics', flag_values=cmd.fv)
flags.DEFINE_string('net', 'G_ema', "generator in the checkpoint: 'G_ema' or 'G'", flag_values=cmd.fv)
flags.DEFINE_integer('batch', 64, 'images per batch', flag_values=cmd.fv)
flags.DEFINE_integer('seed', 0, 'seed of the generated z and noise', flag_values=cmd.fv)
flags.DEFINE_enum(
    'noise-mode',
    'random',
    ['random', 'const'],
    "generator noise: per-image random maps (NVlabs' default) or the stored constants",
    flag_values=cmd.fv,
)
flags.DEFINE_string('out', None, 'write the results here as JSON (default: print only)', flag_values=cmd.fv)
flags.DEFINE_boolean('no-progress', False, 'no progress bars', flag_values=cmd.fv)
flags.mark_flags_as_required(['ckpt', 'data'], flag_values=cmd.fv)


def run(a) -> tuple[dict, dict]:
    """Compute the metrics of parsed flags `a`; returns (results, the JSON document written by --out)."""
    specs = compute.parse_metrics(a.metrics)
    if a.batch < 1:
        raise compute.MetricsError(f'--batch must be positive, got {a.batch}')
    if any(sp.extractor == 'inception' for sp in specs):
        if not a.inception:
            raise compute.MetricsError(
                f'{", ".join(sp.name for sp in specs if sp.extractor == "inception")} needs '
                f"--inception PATH (pytorch-fid's pt_inception-2015-12-05-6726825d.pth; "
                f'nothing is downloaded)'
            )
        if not os.path.isfile(a.inception):
            raise CliError(f'Inception weights not found: {a.inception}')
    if not os.path.exists(a.ckpt):
        raise CliError(f'checkpoint not found: {a.ckpt}')
    ck = load_checkpoint(a.ckpt)
    try:
        gen = ck.generator(a.net)
    except MissingEntryError as e:  # --net names no generator of this checkpoint
        raise CliError(f'--net: {message(e)}') from None
    for note in ck.notes:
        print(f'note: {note}', file=sys.stderr)
    ds = make_dataset(a.data, gen.resolution)
    evaluator, eval_name = a.evaluator, None
    if any(sp.extractor == 'eval' for sp in specs):
        domain = compute._proc_domain(ds)
        if evaluator is None and domain is None:
            raise compute.MetricsError(
                f'{a.data} is not a proc: dataset: pass --evaluator DOMAIN|PATH for the eval metrics'
            )
        ext = compute.get_extractor('eval', gen.resolution, evaluator=evaluator, domain=domain)
        if getattr(ext, 'resolution', None) not in (None, gen.resolution):
            raise compute.MetricsError(
                f'checkpoint {a.ckpt} makes {gen.resolution}x{gen.resolution} images but the '
                f'evaluator {evaluator or domain} is for {ext.resolution}x{ext.resolution}'
            )
        evaluator, eval_name = ext, str(a.evaluator or domain)
    print(
        f'{a.ckpt} ({gen.resolution}px) vs {a.data} ({len(ds)} images): {", ".join(sp.name for sp in specs)}',
        file=sys.stderr,
    )
    t0 = time.time()
    res = compute.compute_metrics(
        gen,
        ds,
        [sp.name for sp in specs],
        extractor=evaluator,
        inception=a.inception,
        batch_size=a.batch,
        seed=a.seed,
        noise_mode=a.noise_mode,
        progress=not a.no_progress,
    )
    doc = dict(
        results=res,
        ckpt=str(a.ckpt),
        net=a.net,
        data=a.data,
        resolution=gen.resolution,
        metrics=[sp.name for sp in specs],
        seed=a.seed,
        noise_mode=a.noise_mode,
        evaluator=eval_name,
        inception=a.inception,
        seconds=round(time.time() - t0, 2),
    )
    return res, doc


@entry
def main(argv=None) -> int:
    a = cmd.parse(argv)
    if a.positional:
        fail(f'{a.positional[0]}: unexpected argument (see {cmd.prog} --help)', 2)
    try:
        res, doc = run(a)
    except AlignjaxError as e:  # exit 2, as this command always did (calc_metrics style)
        if debug_requested(argv):
            raise
        print(f'error: {message(e)}', file=sys.stderr)
        return 2
    for k, v in res.items():
        print(f'{k}: {v:.6g}')
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + '\n')
        print(f'-> {out}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
