"""Layer swapping / resolution-dependent model blending (Pinkney & Adler 2020, "Toonify").

Blocks at resolutions <= swap_res come from the `low` model, the others from the `high` model (hard switch);
with `width`, a logistic in log2(resolution) blends them smoothly instead:

    alpha(res) = sigmoid((log2(res) - log2(swap_res) - 0.5) / width)      (the weight of the `high` model)

(centred half a level above swap_res, so width -> 0 gives the hard switch; Pinkney's blend_models.py centres
it on swap_res itself). Mapping network and w_avg always come from the parent: latents live in its space.
Toonify keeps the parent's (photo) high-resolution layers and the child's (toon) low-resolution ones:
`layer_swap(parent, child, swap_res=16, low='child')` -- child structure, parent texture (the default).

    blended = layer_swap(parent, child, 16)                 # a Generator: render latents inverted in the parent
    alignjax-layer-swap --parent P.pkl --child C.pkl --latents inv/ --swap-res 8,16 --outdir out

(the command line: alignjax/cli/layer_swap.py)
"""

from __future__ import annotations

import math

from alignjax.apps.blend import blend_variables, check_compatible
from alignjax.errors import InputError


def swap_alphas(resolutions, swap_res: float, width: float | None = None) -> dict[int, float]:
    """{res: weight of the high model} for each block resolution. `resolutions`: a list or a GeneratorConfig."""
    if hasattr(resolutions, 'block_resolutions'):
        resolutions = resolutions.block_resolutions
    if swap_res <= 0:
        raise InputError(f'swap_res must be > 0, got {swap_res}')
    out = {}
    for r in resolutions:
        x = math.log2(r) - math.log2(swap_res)
        if not width:
            out[int(r)] = 1.0 if x > 0 else 0.0
        else:
            out[int(r)] = 0.5 * (1.0 + math.tanh((x - 0.5) / (2.0 * width)))  # logistic, overflow-free
    return out


def layer_swap(parent, child, swap_res: float, width: float | None = None, *, low: str = 'child'):
    """A Generator whose synthesis blocks are taken (or logistically blended) per resolution from parent and
    child; mapping and w_avg from the parent. low='child' (Toonify): res <= swap_res from the child.
    swap_res >= resolution: everything from `low`; swap_res < 4: everything from the other model."""
    if low not in ('child', 'parent'):
        raise InputError(f"low must be 'child' or 'parent', got {low!r}")
    check_compatible(parent, child)
    alphas = swap_alphas(parent.config, swap_res, width)
    lo, hi = (child, parent) if low == 'child' else (parent, child)
    variables = blend_variables(lo.variables, hi.variables, alphas)
    # mapping + w_avg from the parent whichever side it is on
    variables['params']['mapping'] = parent.variables['params']['mapping']
    variables['buffers']['mapping'] = parent.variables['buffers']['mapping']
    return parent.with_variables(variables)


if __name__ == '__main__':  # the old spelling of `alignjax-layer-swap`
    from alignjax.cli.layer_swap import main

    raise SystemExit(main())
