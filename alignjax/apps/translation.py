"""Zero-shot image-to-image translation with aligned generators (StyleAlign, Wu et al. 2022).

Invert the image in the parent, decode the same latent with each child. StyleAlign's setting (the default
here) inverts in Z with z = 0 as the start and truncation psi = 0.5, and each model maps z with its own
mapping network and w_avg; W / W+ latents are fed to the children's synthesis networks directly.

    tr = translate(parent, child, images)                  # images: uint8/float [N, H, W, 3] or Latents
    tr.images                                               # the child's translations [N, H, W, 3]
    tr = translate(parent, {'cat': cat, 'wild': wild}, images, config=InvertConfig(space='w+', noise=True))
    save_translation('out', names, tr)                      # grid PNG + HTML page
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from alignjax import vis
from alignjax.apps.blend import check_compatible
from alignjax.invert.project import InvertConfig, InvertResult, Latents, decode, invert


@dataclasses.dataclass
class Translation:
    latents: Latents  # in the parent's space
    inputs: np.ndarray | None  # the images that were inverted: uint8, or float in [-1, 1] (None
    # when latents were given)
    recon: np.ndarray  # parent reconstructions [N, H, W, C] float
    outputs: dict  # child label -> translations [N, H, W, C] float
    inversion: InvertResult | None = None

    @property
    def images(self) -> np.ndarray:
        """The translations of the only child (ValueError with several: use `outputs`)."""
        if len(self.outputs) != 1:
            raise ValueError(f'{len(self.outputs)} children: use .outputs[label]')
        return next(iter(self.outputs.values()))


def _children(child) -> list[tuple[str, object]]:
    if isinstance(child, Mapping):
        return [(str(k), v) for k, v in child.items()]
    if isinstance(child, Sequence) and not hasattr(child, 'synthesis'):
        return [(f'child{i}', c) for i, c in enumerate(child)]
    return [('child', child)]


def decode_children(children, latents: Latents, noise: str = 'latents', key=None, batch: int = 16) -> dict:
    """{label: images} for each (label, generator). noise: 'latents' (the inverted noise maps when there are
    any, else each child's const noise) | 'const' (each child's own const noise) | 'random' (needs key)."""
    if noise not in ('latents', 'const', 'random'):
        raise ValueError(f"noise must be 'latents', 'const' or 'random', got {noise!r}")
    lat = latents if noise == 'latents' else latents.replace(noise=None)
    out = {}
    for label, gen in children:
        parts = []
        for s in range(0, len(lat), batch):
            sub = lat.take(np.arange(s, min(s + batch, len(lat))))
            parts.append(np.asarray(decode(gen, sub, noise_mode='random' if noise == 'random' else 'const', key=key)))
        out[label] = np.concatenate(parts)
    return out


def translate(
    parent,
    child,
    inputs,
    *,
    config: InvertConfig | None = None,
    loss=None,
    seed: int = 0,
    ids=None,
    batch_size: int | None = None,
    noise: str = 'latents',
    key=None,
    progress: bool = False,
    stats=None,
) -> Translation:
    """Translate `inputs` (images [N, H, W, C] uint8 or float in [-1, 1], or parent `Latents`) with `child`
    (a Generator, a list of them, or a {label: Generator} dict). Images are first inverted in the parent
    with `config` (default: StyleAlign's, `InvertConfig.stylealign()`)."""
    kids = _children(child)
    for label, g in kids:
        check_compatible(parent, g, f'parent and {label}')
    res = None
    imgs = None
    if isinstance(inputs, Latents):
        latents = inputs
        recon = np.asarray(decode(parent, latents))
    else:
        imgs = np.asarray(inputs)
        res = invert(
            parent,
            imgs,
            config or InvertConfig.stylealign(),
            loss=loss,
            seed=seed,
            ids=ids,
            batch_size=batch_size,
            progress=progress,
            stats=stats,
        )
        latents, recon = res.latents, res.images
        if imgs.dtype == np.uint8:
            imgs = imgs.astype(np.float32) / 127.5 - 1
    outputs = decode_children(kids, latents, noise=noise, key=key)
    return Translation(latents=latents, inputs=imgs, recon=recon, outputs=outputs, inversion=res)


def save_translation(outdir, names: Sequence[str], tr: Translation, title: str = '') -> dict:
    """DIR/input|recon/<name>.png, DIR/translate/<child>/<name>.png, DIR/translate.png (rows: images;
    columns: input | parent reconstruction | each child) and DIR/translate.html. Returns the paths."""
    out = Path(outdir)

    def u8(imgs):  # uint8 inputs are already pixels; floats are in [-1, 1]
        imgs = np.asarray(imgs)
        return imgs if imgs.dtype == np.uint8 else vis.to_uint8(imgs)

    cols = []
    heads = []
    if tr.inputs is not None:
        cols.append(('input', u8(tr.inputs)))
        heads.append('input')
    cols.append(('recon', u8(tr.recon)))
    heads.append('parent reconstruction')
    for label, imgs in tr.outputs.items():
        cols.append((f'translate/{label}', u8(imgs)))
        heads.append(label)
    for sub, imgs in cols:
        for i, n in enumerate(names):
            vis.save_png(out / sub / f'{n}.png', imgs[i])
    n, ncol = len(names), len(cols)
    cells = np.stack([cols[j][1][i] for i in range(n) for j in range(ncol)])
    grid = vis.save_png(out / 'translate.png', vis.grid(cells, cols=ncol, pad=2))
    rows = []
    for name in names:
        tds = ''.join(
            f'<td><img src="{html.escape(sub)}/{html.escape(name)}.png" width="{_disp(cols[0][1])}"></td>'
            for sub, _ in cols
        )
        rows.append(f'<tr><th>{html.escape(name)}</th>{tds}</tr>')
    head = ''.join(f'<th>{html.escape(h)}</th>' for h in heads)
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title or "translation")}'
        f'</title><style>body{{font-family:sans-serif}}td,th{{padding:4px;text-align:center}}'
        f'img{{image-rendering:pixelated}}</style></head><body><h1>{html.escape(title or "translation")}</h1>'
        f'<p>Each row: the input, its reconstruction by the parent, and the same latent decoded by each child '
        f'({html.escape(tr.latents.space)} space'
        f'{", truncation " + str(tr.latents.truncation_psi) if tr.latents.space == "z" else ""}).</p>'
        f'<table><tr><th></th>{head}</tr>{"".join(rows)}</table></body></html>'
    )
    page_path = out / 'translate.html'
    page_path.write_text(page, encoding='utf-8')
    return dict(grid=grid, html=page_path)


def _disp(imgs) -> int:
    return max(128, int(imgs.shape[2]))
