"""Layer swapping (Toonify): render latents with the parent, blends of parent and child swapped at each
--swap-res, and the child, side by side.

    alignjax-layer-swap --parent P.pkl --child C.pkl --latents inv/ --swap-res 8,16 --outdir out
    alignjax-layer-swap --parent P.pkl --child C.pkl --seeds 0-7 --psi 0.7 --outdir out --save blended/

(also `python -m alignjax.cli.layer_swap` or `python -m alignjax.apps.swapping`.) Writes OUTDIR/<column>/
<name>.png per column (parent, swap<res>..., child) and OUTDIR/layer_swap.png; --save writes the blend of the
first --swap-res as a checkpoint folder. The library: alignjax.apps.swapping.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from absl import flags

from alignjax import vis
from alignjax.apps.swapping import layer_swap
from alignjax.cli import _apps
from alignjax.cli._common import DEFAULT_SEEDS, CliError, Command, check_outdir, entry, parse_seeds
from alignjax.invert.project import Latents, decode


def command() -> Command:
    cmd = Command('alignjax-layer-swap', __doc__)
    fv = cmd.fv
    flags.DEFINE_string('parent', None, 'parent checkpoint (its mapping and latent space are used)', flag_values=fv)
    flags.DEFINE_string('child', None, 'child checkpoint fine-tuned from the parent', flag_values=fv)
    flags.DEFINE_string('net', 'G_ema', "generator in the checkpoints: 'G_ema' (default) or 'G'", flag_values=fv)
    flags.DEFINE_string('latents', None, 'an invert.py output folder (latents of the parent)', flag_values=fv)
    flags.DEFINE_string(
        'seeds',
        DEFAULT_SEEDS,
        f'seeds to render when no --latents (NVlabs z per seed; default {DEFAULT_SEEDS})',
        flag_values=fv,
    )
    flags.DEFINE_float('psi', 1.0, 'truncation psi for --seeds (default 1)', flag_values=fv)
    flags.DEFINE_integer('psi-cutoff', None, 'truncate only the first K ws', flag_values=fv)
    flags.DEFINE_string('swap-res', '8,16', 'comma-separated swap resolutions to compare', flag_values=fv)
    flags.DEFINE_float('width', None, 'logistic width in resolution levels (default hard)', flag_values=fv)
    flags.DEFINE_enum('low', 'child', ['child', 'parent'], 'model of the low resolutions', flag_values=fv)
    flags.DEFINE_string('outdir', None, 'output folder', flag_values=fv)
    flags.DEFINE_string(
        'save', None, 'save the blended generator of the first --swap-res as a checkpoint dir', flag_values=fv
    )
    flags.mark_flags_as_required(['parent', 'child', 'outdir'], flag_values=fv)
    return cmd


@entry
def main(argv=None):
    """Exit 0, or 1 with one `error: ...` line (the traceback with --debug or ALIGNJAX_DEBUG=1)."""
    a = _apps.parse(command(), argv)
    try:
        levels = [float(s) for s in a.swap_res.split(',') if s.strip()]
    except ValueError:
        raise CliError(f"--swap-res {a.swap_res!r}: give resolutions like '8,16'") from None
    if not levels or min(levels) <= 0:
        raise CliError(f"--swap-res {a.swap_res!r}: give positive resolutions like '8,16'")
    seeds = None if a.latents else parse_seeds(a.seeds)
    out = check_outdir(a.outdir)
    if a.save:
        check_outdir(Path(a.save).parent if str(Path(a.save).parent) else '.', 'the folder of --save')
    parent, ck = _apps.load_generator(a.parent, a.net)
    child, _ = _apps.load_generator(a.child, a.net)
    _apps.check_aligned(parent, child, a.parent, a.child)
    if a.latents:
        names, lat = _apps.read_latents(a.latents, parent, '--latents')
    else:
        names = [f'seed{s:04d}' for s in seeds]
        z = vis.nvlabs_z(seeds, parent.z_dim)
        lat = Latents(code=np.asarray(z), space='z', truncation_psi=a.psi, truncation_cutoff=a.psi_cutoff)
    cols = (
        [('parent', parent)]
        + [(f'swap{lv:g}', layer_swap(parent, child, lv, a.width, low=a.low)) for lv in levels]
        + [('child', child)]
    )
    imgs = [vis.to_uint8(np.asarray(decode(g, lat))) for _, g in cols]
    for (label, _), im in zip(cols, imgs):
        for i, n in enumerate(names):
            vis.save_png(out / label / f'{n}.png', im[i])
    cells = np.stack([imgs[j][i] for i in range(len(names)) for j in range(len(cols))])
    grid = vis.save_png(out / 'layer_swap.png', vis.grid(cells, cols=len(cols), pad=2))
    print(f'columns: {", ".join(lbl for lbl, _ in cols)} -> {grid}')
    if a.save:
        blended = cols[1][1]
        dataclasses.replace(ck, nets={'G_ema': blended.variables}, notes=[], extra={}).save(a.save)
        print(f'saved the blended generator (swap {levels[0]:g}) -> {a.save}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
