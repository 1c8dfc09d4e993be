"""Contact sheet of the procedural domains: one row per factor vector, one
column per domain (the same factors across a row), at several resolutions.

    alignjax-contact-sheet --out docs/procedural_domains.png     # or python -m alignjax.data.contact_sheet
"""

from __future__ import annotations

import numpy as np

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
            img = procedural.render(d, fac, res, outputs=('image',))['image']
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
    for cols in groups:
        for img in cols:
            for r in range(rows):
                y = pad + r * (cell + pad)
                sheet[y : y + img.shape[1], x : x + img.shape[2]] = img[r]
            x += cell + pad
        x += gap
    return sheet


if __name__ == '__main__':  # `python -m alignjax.data.contact_sheet` (the command line: alignjax.cli.contact_sheet)
    from alignjax.cli.contact_sheet import main

    raise SystemExit(main())
