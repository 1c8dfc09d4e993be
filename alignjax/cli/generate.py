"""Render images from a checkpoint: one grid (--out FILE) or, as NVlabs generate.py, one PNG per seed (--outdir).

    alignjax-generate --ckpt network.pkl --seeds 0-15 --psi 0.7 --out grid.png
    alignjax-generate --ckpt network.pkl --seeds 0-7 --outdir out/      # out/seed0000.png ... + grid.png

(also `python -m alignjax.cli.generate` or `python -m alignjax.generate`). Seeds give the same z as NVlabs
generate.py (np.random.RandomState(seed).randn). Default: seeds 0-7, psi 1, grid.png. (--trunc /
--trunc-cutoff are deprecated spellings of --psi / --psi-cutoff.) The library: alignjax.generate.render_seeds.
"""

from __future__ import annotations

from absl import flags

from alignjax import vis
from alignjax.cli import _apps
from alignjax.cli._common import DEFAULT_SEEDS, CliError, Command, check_outdir, check_outfile, entry, parse_seeds
from alignjax.generate import render_seeds


def command() -> Command:
    cmd = Command('alignjax-generate', __doc__)
    fv = cmd.fv
    flags.DEFINE_string('ckpt', None, '.pkl (NVlabs / TF), rosinality .pt or alignjax checkpoint dir', flag_values=fv)
    flags.mark_flag_as_required('ckpt', flag_values=fv)
    flags.DEFINE_string('seeds', DEFAULT_SEEDS, f"e.g. '0-15' or '1,5,9' (default {DEFAULT_SEEDS})", flag_values=fv)
    flags.DEFINE_float('psi', 1.0, 'truncation psi (default 1: none)', flag_values=fv)
    flags.DEFINE_integer('psi-cutoff', None, 'truncate only the first K ws', flag_values=fv)
    flags.DEFINE_enum('noise-mode', 'const', ['const', 'none', 'random'], 'noise inputs', flag_values=fv)
    flags.DEFINE_string('net', 'G_ema', "which generator: 'G_ema' (default) or 'G'", flag_values=fv)
    flags.DEFINE_integer('class-idx', None, 'class for conditional models', flag_values=fv)
    flags.DEFINE_integer('cols', None, 'grid columns (default: about square)', lower_bound=1, flag_values=fv)
    flags.DEFINE_integer('batch', 8, 'images rendered together', lower_bound=1, flag_values=fv)
    flags.DEFINE_string('out', None, 'the grid PNG (default grid.png, or OUTDIR/grid.png)', flag_values=fv)
    flags.DEFINE_string('outdir', None, 'also write OUTDIR/seedNNNN.png per seed (NVlabs layout)', flag_values=fv)
    cmd.deprecated('--trunc', '--psi')
    cmd.deprecated('--trunc-cutoff', '--psi-cutoff')
    return cmd


@entry
def main(argv=None):
    """Exit 0, or 1 with one `error: ...` line (the traceback with --debug or ALIGNJAX_DEBUG=1)."""
    a = _apps.parse(command(), argv)
    seeds = parse_seeds(a.seeds)
    if a.outdir is not None:
        check_outdir(a.outdir)
    out = a.out if a.out is not None else (f'{a.outdir}/grid.png' if a.outdir is not None else 'grid.png')
    check_outfile(out)
    gen, _ = _apps.load_generator(a.ckpt, a.net)
    if gen.config.c_dim:
        if a.class_idx is None:
            raise CliError(f'{a.ckpt} is conditional ({gen.config.c_dim} classes): pass --class-idx')
        if not 0 <= a.class_idx < gen.config.c_dim:
            raise CliError(f'--class-idx {a.class_idx}: {a.ckpt} has classes 0..{gen.config.c_dim - 1}')
    elif a.class_idx is not None:
        raise CliError(f'--class-idx given but {a.ckpt} is not conditional')
    if a.psi_cutoff is not None and not 0 < a.psi_cutoff <= gen.num_ws:
        raise CliError(f'--psi-cutoff {a.psi_cutoff}: the generator has {gen.num_ws} ws')
    u8 = render_seeds(
        gen, seeds, psi=a.psi, psi_cutoff=a.psi_cutoff, noise_mode=a.noise_mode, class_idx=a.class_idx, batch=a.batch
    )
    if a.outdir is not None:
        for s, im in zip(seeds, u8):
            vis.save_png(f'{a.outdir}/seed{s:04d}.png', im)
    path = vis.save_png(out, vis.grid(u8, cols=a.cols))
    print(
        f'wrote {path} ({len(seeds)} images, {gen.config.resolution}x{gen.config.resolution})'
        + (f' and {a.outdir}/seed*.png' if a.outdir is not None else '')
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
