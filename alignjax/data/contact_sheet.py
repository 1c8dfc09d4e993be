"""Contact sheet of the procedural domains: one row per factor vector, one
column per domain (the same factors across a row), at several resolutions.

    python -m alignjax.data.contact_sheet --out docs/procedural_domains.png
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from alignjax.data import procedural


def contact_sheet(
    rows: int = 8,
    seed: int = 0,
    resolutions=(64, 32),
    display: int = 128,
    domains=procedural.DOMAINS,
    pad: int = 4,
) -> np.ndarray:
    """Rows: factor vectors; column groups: resolutions; within a group, domains.

    Each cell is upscaled (nearest) to ``display`` pixels so small renders are
    seen pixel for pixel.
    """
    fac = procedural.sample_factors(seed, rows)
    groups = []
    for res in resolutions:
        cols = []
        for d in domains:
            img = procedural.render(d, fac, res, outputs=("image",))["image"]
            k = max(1, display // res)
            img = img.repeat(k, 1).repeat(k, 2)
            cols.append(img)
        groups.append(cols)
    cell = groups[0][0].shape[1]
    n_cols = sum(len(g) for g in groups)
    gap = pad * 4
    h = rows * (cell + pad) + pad
    w = n_cols * (cell + pad) + pad + gap * (len(groups) - 1)
    sheet = np.full((h, w, 3), 255, np.uint8)
    x = pad
    for gi, cols in enumerate(groups):
        for img in cols:
            for r in range(rows):
                y = pad + r * (cell + pad)
                sheet[y : y + img.shape[1], x : x + img.shape[2]] = img[r]
            x += cell + pad
        x += gap
    return sheet


def _main(argv=None):
    from alignjax import _cli

    p = argparse.ArgumentParser(prog="python -m alignjax.data.contact_sheet", description=__doc__)
    p.add_argument("--out", default="docs/procedural_domains.png", help="the PNG to write")
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resolution", type=int, nargs="+", default=[64, 32], help="render resolutions (64 32)")
    p.add_argument("--display", type=int, default=128)
    _cli.deprecated(p, "--res", "--resolution", nargs="+")
    _cli.add_debug(p)
    a = p.parse_args(argv)
    if a.rows < 1 or a.display < 1 or min(a.resolution) < 1:
        p.error("--rows, --display and --resolution must be >= 1")
    _cli.check_outfile(a.out)
    Image.fromarray(contact_sheet(a.rows, a.seed, a.resolution, a.display)).save(a.out)
    print(a.out)
    return 0


def main(argv=None):
    from alignjax._cli import entry

    return entry(_main)(argv)


if __name__ == "__main__":
    raise SystemExit(main())
