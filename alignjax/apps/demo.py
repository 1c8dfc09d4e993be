"""The demo: training stages (a parent, a child fine-tuned from it), then the applications on the two.

    results = run_demo(alignjax.configs.get_config('demo'), 'runs/demo')     # what `make demo` runs

`demo_outputs` writes, for a parent and a child: a translation grid (real procedural faces inverted in the
parent with StyleAlign's Z-space preset, decoded by the child) and a morph of the first face into its own
translation (GIF, MP4 when imageio-ffmpeg is installed, strip PNG). The entry point is `alignjax.cli.demo`.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from alignjax import vis
from alignjax.apps.morphing import morph
from alignjax.apps.translation import save_translation, translate
from alignjax.apps.video import save_animation
from alignjax.data import make_dataset
from alignjax.invert.project import InvertConfig
from alignjax.io.checkpoint import load_checkpoint
from alignjax.train.loop import run


def run_demo(config, workdir) -> dict:
    """`alignjax.train.loop.run(config, workdir)` (every stage), then, when `config.demo_outputs` is set and the
    stages finished, `demo_outputs` for the first stage (parent) and the second (child) in `workdir`."""
    t0 = time.time()
    results = run(config, workdir)
    finals = results.get('finals') or {}
    if config.demo_outputs and len(finals) >= 2 and jax.process_index() == 0:
        names = list(finals)
        out = Path(workdir).absolute()
        paths = demo_outputs(finals[names[0]], finals[names[1]], out, child_label=names[1])
        print(summary(out, paths, time.time() - t0, names), flush=True)
    return results


def _minsec(s: float) -> str:
    return f'{int(s // 60)} min {round(s % 60)} s' if s >= 60 else f'{s:.0f} s'


def summary(out: Path, paths: dict, seconds: float, names=('parent', 'child')) -> str:
    """The demo's closing lines: total wall time and every output, with what it shows."""
    child = names[1] if len(names) > 1 else 'child'
    paths = paths or {}
    rows = [(out / 'compare.png', f'the same z through {" and ".join(names)} (one row each), 4x, labelled')]
    grids = sorted((out / child / 'samples').glob('grid_*.png'))
    if grids:
        rows.append(
            (out / child / 'samples' / 'grid_*.png', f"the {child}'s progress on fixed latents ({len(grids)} grids)")
        )
    rows += [
        (paths.get('grid'), f'translation: input | parent reconstruction | {child}, 4x, labelled'),
        (paths.get('html'), 'the same translation as a page'),
    ]
    for k, what in (
        ('morph_gif', 'morph parent -> child (latent and weights)'),
        ('morph_mp4', 'the morph as MP4'),
        ('morph_png', 'the morph as a strip of 8 frames'),
    ):
        if paths.get(k) is not None and (k != 'morph_mp4' or Path(paths[k]).suffix == '.mp4'):
            rows.append((paths[k], what))
    rows.append(
        (out / child / 'final', f'the fine-tuned {child} (alignjax.load_checkpoint; alignjax-export to .pt / .pkl)')
    )
    width = max(len(str(p)) for p, _ in rows if p is not None)
    lines = [f'demo done in {_minsec(seconds)} (wall, this process); wrote:']
    lines += [f'  {p!s:<{width}}  {what}' for p, what in rows if p is not None and (Path(p).exists() or '*' in str(p))]
    return '\n'.join(lines)


def demo_outputs(
    parent_ckpt,
    child_ckpt,
    outdir,
    *,
    n: int = 6,
    steps: int = 300,
    frames: int = 110,
    source_spec: str = 'proc:faces?seed=777&n=64',
    child_label: str = 'child',
) -> dict:
    outdir = Path(outdir)
    parent = load_checkpoint(parent_ckpt).generator()
    child = load_checkpoint(child_ckpt).generator()
    ds = make_dataset(source_spec, parent.resolution)
    images = np.stack([ds[i]['image'] for i in range(n)])
    names = [f'face{i}' for i in range(n)]
    tr = translate(parent, {child_label: child}, images, config=InvertConfig.stylealign(steps=steps), progress=True)
    title = 'parent -> child translation (StyleAlign Z, psi 0.5)'
    paths = save_translation(outdir / 'translate', names, tr, title=title)
    cells = np.stack([vis.to_uint8(tr.recon), vis.to_uint8(tr.outputs[child_label])], axis=1)
    cells = np.concatenate([images[:, None], cells], axis=1)  # rows: faces; columns: input | recon | child
    vis.save_png(paths['grid'], vis.labelled_grid(cells, names, ['input', 'parent recon.', child_label], title=title))
    clip = morph(parent, child, tr.latents.take(np.arange(1)), frames=frames)
    paths.update({f'morph_{k}': v for k, v in save_animation(outdir / 'morph', clip[0], scale=4).items()})
    print(
        f'wrote {outdir}/translate/translate.png (input | parent reconstruction | {child_label}) and '
        f'{outdir}/morph.gif ({frames} frames: parent -> child, latent and weights)'
    )
    return paths
