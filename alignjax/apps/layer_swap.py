"""Layer swapping / resolution-dependent model blending (Pinkney & Adler 2020, "Toonify").

Blocks at resolutions <= swap_res come from the `low` model, the others from the `high` model (hard switch);
with `width`, a logistic in log2(resolution) blends them smoothly instead:

    alpha(res) = sigmoid((log2(res) - log2(swap_res) - 0.5) / width)      (the weight of the `high` model)

(centred half a level above swap_res, so width -> 0 gives the hard switch; Pinkney's blend_models.py centres
it on swap_res itself). Mapping network and w_avg always come from the parent: latents live in its space.
Toonify keeps the parent's (photo) high-resolution layers and the child's (toon) low-resolution ones:
`layer_swap(parent, child, swap_res=16, low='child')` -- child structure, parent texture (the default).

    blended = layer_swap(parent, child, 16)                 # a Generator: render latents inverted in the parent
    python -m alignjax.apps.layer_swap --parent P.pkl --child C.pkl --latents inv/ --swap-res 8,16 --outdir out
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from alignjax.apps.blend import blend_variables, check_compatible


def swap_alphas(resolutions, swap_res: float, width: float | None = None) -> dict[int, float]:
    """{res: weight of the high model} for each block resolution. `resolutions`: a list or a GeneratorConfig."""
    if hasattr(resolutions, 'block_resolutions'):
        resolutions = resolutions.block_resolutions
    if swap_res <= 0:
        raise ValueError(f'swap_res must be > 0, got {swap_res}')
    out = {}
    for r in resolutions:
        x = math.log2(r) - math.log2(swap_res)
        if not width:
            out[int(r)] = 1.0 if x > 0 else 0.0
        else:
            out[int(r)] = 0.5 * (1.0 + math.tanh((x - 0.5) / (2.0 * width)))   # logistic, overflow-free
    return out


def layer_swap(parent, child, swap_res: float, width: float | None = None, *, low: str = 'child'):
    """A Generator whose synthesis blocks are taken (or logistically blended) per resolution from parent and
    child; mapping and w_avg from the parent. low='child' (Toonify): res <= swap_res from the child.
    swap_res >= resolution: everything from `low`; swap_res < 4: everything from the other model."""
    if low not in ('child', 'parent'):
        raise ValueError(f"low must be 'child' or 'parent', got {low!r}")
    check_compatible(parent, child)
    alphas = swap_alphas(parent.config, swap_res, width)
    lo, hi = (child, parent) if low == 'child' else (parent, child)
    variables = blend_variables(lo.variables, hi.variables, alphas)
    # mapping + w_avg from the parent whichever side it is on
    variables['params']['mapping'] = parent.variables['params']['mapping']
    variables['buffers']['mapping'] = parent.variables['buffers']['mapping']
    return parent.with_variables(variables)


def _main(argv=None):
    from alignjax import _cli, vis
    from alignjax.invert import cli as icli
    from alignjax.invert.project import Latents, check_latents, decode
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--parent', required=True)
    p.add_argument('--child', required=True)
    p.add_argument('--net', default='G_ema')
    p.add_argument('--latents', help='an invert.py output folder (latents of the parent)')
    p.add_argument('--seeds', default=_cli.DEFAULT_SEEDS, help='seeds to render when no --latents (NVlabs z per '
                                                               f'seed; default {_cli.DEFAULT_SEEDS})')
    p.add_argument('--psi', type=float, default=1.0, help='truncation psi for --seeds (default 1)')
    p.add_argument('--psi-cutoff', type=int, default=None, help='truncate only the first K ws')
    p.add_argument('--swap-res', default='8,16', help='comma-separated swap resolutions to compare')
    p.add_argument('--width', type=float, default=None, help='logistic width in resolution levels (default hard)')
    p.add_argument('--low', choices=['child', 'parent'], default='child', help='model of the low resolutions')
    p.add_argument('--outdir', required=True)
    p.add_argument('--save', help='save the blended generator of the first --swap-res as a checkpoint dir')
    _cli.add_debug(p)
    a = p.parse_args(argv)
    try:
        levels = [float(s) for s in a.swap_res.split(',') if s.strip()]
    except ValueError:
        raise _cli.CliError(f"--swap-res {a.swap_res!r}: give resolutions like '8,16'") from None
    if not levels or min(levels) <= 0:
        raise _cli.CliError(f"--swap-res {a.swap_res!r}: give positive resolutions like '8,16'")
    seeds = None if a.latents else _cli.parse_seeds(a.seeds)
    out = _cli.check_outdir(a.outdir)
    if a.save:
        _cli.check_outdir(Path(a.save).parent if str(Path(a.save).parent) else '.', 'the folder of --save')
    parent, ck = icli.load_generator(a.parent, a.net)
    child, _ = icli.load_generator(a.child, a.net)
    icli.check_aligned(parent, child, a.parent, a.child)
    if a.latents:
        from alignjax.invert.store import load_latents
        try:
            names, lat = load_latents(a.latents)
            check_latents(parent, lat, f'--latents {a.latents}')
        except (OSError, KeyError, ValueError) as e:
            raise _cli.CliError(_cli.message(e)) from None
    else:
        names = [f'seed{s:04d}' for s in seeds]
        z = vis.nvlabs_z(seeds, parent.z_dim)
        lat = Latents(code=np.asarray(z), space='z', truncation_psi=a.psi, truncation_cutoff=a.psi_cutoff)
    cols = [('parent', parent)] + [(f'swap{lv:g}', layer_swap(parent, child, lv, a.width, low=a.low))
                                   for lv in levels] + [('child', child)]
    imgs = [vis.to_uint8(np.asarray(decode(g, lat))) for _, g in cols]
    for (label, _), im in zip(cols, imgs):
        for i, n in enumerate(names):
            vis.save_png(out / label / f'{n}.png', im[i])
    cells = np.stack([imgs[j][i] for i in range(len(names)) for j in range(len(cols))])
    grid = vis.save_png(out / 'layer_swap.png', vis.grid(cells, cols=len(cols), pad=2))
    print(f'columns: {", ".join(lbl for lbl, _ in cols)} -> {grid}')
    if a.save:
        import dataclasses
        blended = cols[1][1]
        nets = {'G_ema': blended.variables}
        dataclasses.replace(ck, nets=nets, notes=[], extra={}).save(a.save)
        print(f'saved the blended generator (swap {levels[0]:g}) -> {a.save}')
    return 0


def main(argv=None):
    """`python -m alignjax.apps.layer_swap`: exit 0, or 1 with one `error: ...` line (traceback with --debug)."""
    from alignjax._cli import entry
    return entry(_main)(argv)


if __name__ == '__main__':
    main()
