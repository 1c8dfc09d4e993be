"""`python -m alignjax.metrics`: distribution metrics of a checkpoint against a dataset (like NVlabs calc_metrics).

    python -m alignjax.metrics --ckpt runs/toons/final --data 'proc:toons?n=20000' \\
        --metrics fd_eval10k,kid_eval10k,pr_eval10k --out metrics.json
    python -m alignjax.metrics --ckpt ffhq.pkl --data zip:ffhq256.zip --metrics fid50k \\
        --inception pt_inception-2015-12-05-6726825d.pth --out fid.json

Metric names: <metric>_<extractor><N>[k] with metric fd | kid | pr and extractor eval (domain evaluator) |
inception (FID Inception-v3, needs --inception) | pix (random pixel projection, plumbing checks only); fid<N>[k]
is fd_inception<N>[k]. N generated images (psi 1, fixed seeds) against the dataset's first N images.
--evaluator: a domain (faces, toons, animals, buildings) or a saved evaluator directory; proc: datasets default
to their own domain. Writes --out as JSON: {"results": {name: value}, "ckpt", "data", "seconds", ...}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m alignjax.metrics', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', required=True, help='NVlabs .pkl, rosinality .pt, TF .pkl, or our checkpoint dir')
    p.add_argument('--data', required=True, help='real images: folder:, zip:, tfds:, proc: spec or a path')
    p.add_argument('--metrics', default='fd_eval10k,kid_eval10k,pr_eval10k',
                   help='comma-separated metric names (default: %(default)s)')
    p.add_argument('--inception', help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (fid, *_inception)")
    p.add_argument('--evaluator', help='domain or evaluator directory for *_eval metrics')
    p.add_argument('--net', default='G_ema', help="generator in the checkpoint: 'G_ema' (default) or 'G'")
    p.add_argument('--batch', type=int, default=64, help='images per batch')
    p.add_argument('--seed', type=int, default=0, help='seed of the generated z and noise')
    p.add_argument('--noise-mode', choices=['random', 'const'], default='random',
                   help="generator noise: per-image random maps (NVlabs' default) or the stored constants")
    p.add_argument('--out', help='write the results here as JSON (default: print only)')
    p.add_argument('--no-progress', action='store_true')
    return p


def _fail(msg) -> int:
    msg = str(msg).strip().splitlines()[0] if str(msg).strip() else type(msg).__name__
    print(f'error: {msg}', file=sys.stderr)
    return 2


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    from alignjax.io.safe_pickle import CheckpointError
    from alignjax.metrics import compute as C

    known = (C.MetricsError, CheckpointError, ValueError, FileNotFoundError, KeyError, OSError)
    try:
        specs = C.parse_metrics(a.metrics)
        if a.batch < 1:
            raise C.MetricsError(f'--batch must be positive, got {a.batch}')
        if any(sp.extractor == 'inception' for sp in specs):
            if not a.inception:
                raise C.MetricsError(f'{", ".join(sp.name for sp in specs if sp.extractor == "inception")} needs '
                                     f'--inception PATH (pytorch-fid\'s pt_inception-2015-12-05-6726825d.pth; '
                                     f'nothing is downloaded)')
            if not os.path.isfile(a.inception):
                raise FileNotFoundError(f'Inception weights not found: {a.inception}')
        if not os.path.exists(a.ckpt):
            raise FileNotFoundError(f'checkpoint not found: {a.ckpt}')
        from alignjax.data import make_dataset
        from alignjax.model import load_checkpoint
        ck = load_checkpoint(a.ckpt)
        gen = ck.generator(a.net)
        for note in ck.notes:
            print(f'note: {note}', file=sys.stderr)
        ds = make_dataset(a.data, gen.resolution)
        evaluator, eval_name = a.evaluator, None
        if any(sp.extractor == 'eval' for sp in specs):
            domain = C._proc_domain(ds)
            if evaluator is None and domain is None:
                raise C.MetricsError(f'{a.data} is not a proc: dataset: pass --evaluator DOMAIN|PATH for the '
                                     f'eval metrics')
            ext = C.get_extractor('eval', gen.resolution, evaluator=evaluator, domain=domain)
            if getattr(ext, 'resolution', None) not in (None, gen.resolution):
                raise C.MetricsError(f'checkpoint {a.ckpt} makes {gen.resolution}x{gen.resolution} images but the '
                                     f'evaluator {evaluator or domain} is for {ext.resolution}x{ext.resolution}')
            evaluator, eval_name = ext, str(a.evaluator or domain)
        print(f'{a.ckpt} ({gen.resolution}px) vs {a.data} ({len(ds)} images): '
              f'{", ".join(sp.name for sp in specs)}', file=sys.stderr)
        t0 = time.time()
        res = C.compute_metrics(gen, ds, [sp.name for sp in specs], extractor=evaluator, inception=a.inception,
                                batch_size=a.batch, seed=a.seed, noise_mode=a.noise_mode,
                                progress=not a.no_progress)
        secs = time.time() - t0
    except known as e:
        return _fail(e.args[0] if isinstance(e, KeyError) and e.args else e)
    for k, v in res.items():
        print(f'{k}: {v:.6g}')
    if a.out:
        doc = dict(results=res, ckpt=str(a.ckpt), net=a.net, data=a.data, resolution=gen.resolution,
                   metrics=[sp.name for sp in specs], seed=a.seed, noise_mode=a.noise_mode,
                   evaluator=eval_name,
                   inception=a.inception, seconds=round(secs, 2))
        out = Path(a.out)
        if out.parent and not out.parent.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + '\n')
        print(f'-> {out}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
