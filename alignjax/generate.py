"""Render a grid of images from a checkpoint.

    python -m alignjax.generate --ckpt network.pkl --seeds 0-15 --trunc 0.7 --out grid.png

Seeds give the same z as NVlabs generate.py (np.random.RandomState(seed).randn).
"""
from __future__ import annotations

import argparse
import sys

import jax
import numpy as np

from alignjax import vis


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', required=True, help='.pkl (NVlabs / TF), rosinality .pt or alignjax checkpoint dir')
    p.add_argument('--seeds', default='0-15', help="e.g. '0-15' or '1,5,9'")
    p.add_argument('--trunc', type=float, default=1.0, help='truncation psi')
    p.add_argument('--trunc-cutoff', type=int, default=None, help='truncate only the first K ws')
    p.add_argument('--noise-mode', default='const', choices=['const', 'none', 'random'])
    p.add_argument('--net', default='G_ema', help="which generator: 'G_ema' (default) or 'G'")
    p.add_argument('--class-idx', type=int, default=None, help='class for conditional models')
    p.add_argument('--cols', type=int, default=None)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--out', default='grid.png')
    a = p.parse_args(argv)

    from alignjax.io.safe_pickle import CheckpointError
    from alignjax.model import load_checkpoint
    try:
        ck = load_checkpoint(a.ckpt)
        gen = ck.generator(a.net)
    except (CheckpointError, FileNotFoundError, KeyError) as e:
        sys.exit(f'error: {e}')
    for note in ck.notes:
        print(f'note: {note}')
    seeds = vis.parse_range(a.seeds)
    c = None
    if gen.config.c_dim:
        if a.class_idx is None:
            sys.exit(f'error: {a.ckpt} is conditional ({gen.config.c_dim} classes): pass --class-idx')
        c = np.zeros((len(seeds), gen.config.c_dim), np.float32)
        c[:, a.class_idx] = 1
    z = vis.nvlabs_z(seeds, gen.config.z_dim)
    key = jax.random.key(0)
    imgs = []
    for i in range(0, len(seeds), a.batch):
        ws = gen.mapping(z[i:i + a.batch], None if c is None else c[i:i + a.batch], a.trunc, a.trunc_cutoff)
        imgs.append(np.asarray(gen.synthesis(ws, a.noise_mode, key=jax.random.fold_in(key, i))))
    out = vis.save_png(a.out, vis.grid(vis.to_uint8(np.concatenate(imgs)), cols=a.cols))
    print(f'wrote {out} ({len(seeds)} images, {gen.config.resolution}x{gen.config.resolution})')


if __name__ == '__main__':
    main()
