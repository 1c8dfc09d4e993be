"""Render images from a checkpoint: one grid (--out FILE) or, as NVlabs generate.py, one PNG per seed (--outdir).

    python -m alignjax.generate --ckpt network.pkl --seeds 0-15 --psi 0.7 --out grid.png
    python -m alignjax.generate --ckpt network.pkl --seeds 0-7 --outdir out/      # out/seed0000.png ... + grid.png

Seeds give the same z as NVlabs generate.py (np.random.RandomState(seed).randn). Default: seeds 0-7, psi 1,
grid.png. (--trunc / --trunc-cutoff are deprecated spellings of --psi / --psi-cutoff.)
"""
from __future__ import annotations

import argparse

import numpy as np

from alignjax import _cli, vis


def _main(argv=None):
    p = argparse.ArgumentParser(prog='python -m alignjax.generate', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', required=True, help='.pkl (NVlabs / TF), rosinality .pt or alignjax checkpoint dir')
    p.add_argument('--seeds', default=_cli.DEFAULT_SEEDS, help=f"e.g. '0-15' or '1,5,9' (default "
                                                               f"{_cli.DEFAULT_SEEDS})")
    p.add_argument('--psi', type=float, default=1.0, help='truncation psi (default 1: none)')
    p.add_argument('--psi-cutoff', type=int, default=None, help='truncate only the first K ws')
    p.add_argument('--noise-mode', default='const', choices=['const', 'none', 'random'])
    p.add_argument('--net', default='G_ema', help="which generator: 'G_ema' (default) or 'G'")
    p.add_argument('--class-idx', type=int, default=None, help='class for conditional models')
    p.add_argument('--cols', type=int, default=None)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--out', default=None, help='the grid PNG (default grid.png, or OUTDIR/grid.png)')
    p.add_argument('--outdir', default=None, help='also write OUTDIR/seedNNNN.png per seed (NVlabs layout)')
    _cli.deprecated(p, '--trunc', '--psi')
    _cli.deprecated(p, '--trunc-cutoff', '--psi-cutoff')
    _cli.add_debug(p)
    a = p.parse_args(argv)
    if a.batch < 1:
        p.error('--batch must be >= 1')
    if a.cols is not None and a.cols < 1:
        p.error('--cols must be >= 1')
    seeds = _cli.parse_seeds(a.seeds)
    if a.outdir is not None:
        _cli.check_outdir(a.outdir)
    out = a.out if a.out is not None else (f'{a.outdir}/grid.png' if a.outdir is not None else 'grid.png')
    _cli.check_outfile(out)

    import jax
    from alignjax.invert.cli import load_generator
    gen, _ = load_generator(a.ckpt, a.net)
    c = None
    if gen.config.c_dim:
        if a.class_idx is None:
            raise _cli.CliError(f'{a.ckpt} is conditional ({gen.config.c_dim} classes): pass --class-idx')
        if not 0 <= a.class_idx < gen.config.c_dim:
            raise _cli.CliError(f'--class-idx {a.class_idx}: {a.ckpt} has classes 0..{gen.config.c_dim - 1}')
        c = np.zeros((len(seeds), gen.config.c_dim), np.float32)
        c[:, a.class_idx] = 1
    elif a.class_idx is not None:
        raise _cli.CliError(f'--class-idx given but {a.ckpt} is not conditional')
    if a.psi_cutoff is not None and not 0 < a.psi_cutoff <= gen.num_ws:
        raise _cli.CliError(f'--psi-cutoff {a.psi_cutoff}: the generator has {gen.num_ws} ws')
    z = vis.nvlabs_z(seeds, gen.config.z_dim)
    key = jax.random.key(0)
    imgs = []
    for i in range(0, len(seeds), a.batch):
        ws = gen.mapping(z[i:i + a.batch], None if c is None else c[i:i + a.batch], a.psi, a.psi_cutoff)
        imgs.append(np.asarray(gen.synthesis(ws, a.noise_mode, key=jax.random.fold_in(key, i))))
    u8 = vis.to_uint8(np.concatenate(imgs))
    if a.outdir is not None:
        for s, im in zip(seeds, u8):
            vis.save_png(f'{a.outdir}/seed{s:04d}.png', im)
    path = vis.save_png(out, vis.grid(u8, cols=a.cols))
    print(f'wrote {path} ({len(seeds)} images, {gen.config.resolution}x{gen.config.resolution})'
          + (f' and {a.outdir}/seed*.png' if a.outdir is not None else ''))
    return 0


def main(argv=None):
    """Exit 0, or 1 with one `error: ...` line (the traceback with --debug or ALIGNJAX_DEBUG=1)."""
    return _cli.entry(_main)(argv)


if __name__ == '__main__':
    raise SystemExit(main())
