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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="docs/procedural_domains.png")
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--res", type=int, nargs="+", default=[64, 32])
    p.add_argument("--display", type=int, default=128)
    a = p.parse_args(argv)
    Image.fromarray(contact_sheet(a.rows, a.seed, a.res, a.display)).save(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
