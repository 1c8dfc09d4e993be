"""The demo: training stages (a parent, a child fine-tuned from it), then the applications on the two.

    results = run_demo(alignjax.configs.get_config('demo'), 'runs/demo')     # what `make demo` runs

`demo_outputs` writes, for a parent and a child: a translation grid (real procedural faces inverted in the
parent with StyleAlign's Z-space preset, decoded by the child) and a morph of the first face into its own
translation (GIF, MP4 when imageio-ffmpeg is installed, strip PNG). The entry point is `alignjax.cli.demo`.
"""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from alignjax.apps.morphing import morph
from alignjax.apps.translate import save_translation, translate
from alignjax.apps.video import save_animation
from alignjax.data import make_dataset
from alignjax.invert.project import InvertConfig
from alignjax.io.checkpoint import load_checkpoint
from alignjax.train.loop import run


def run_demo(config, workdir) -> dict:
    """`alignjax.train.loop.run(config, workdir)` (every stage), then, when `config.demo_outputs` is set and the
    stages finished, `demo_outputs` for the first stage (parent) and the second (child) in `workdir`."""
    results = run(config, workdir)
    finals = results.get('finals') or {}
    if config.demo_outputs and len(finals) >= 2 and jax.process_index() == 0:
        names = list(finals)
        demo_outputs(finals[names[0]], finals[names[1]], Path(workdir).absolute(), child_label=names[1])
    return results


def demo_outputs(parent_ckpt, child_ckpt, outdir, *, n: int = 6, steps: int = 300, frames: int = 110,
                 source_spec: str = 'proc:faces?seed=777&n=64', child_label: str = 'child') -> dict:
    outdir = Path(outdir)
    parent = load_checkpoint(parent_ckpt).generator()
    child = load_checkpoint(child_ckpt).generator()
    ds = make_dataset(source_spec, parent.resolution)
    images = np.stack([ds[i]['image'] for i in range(n)])
    names = [f'face{i}' for i in range(n)]
    tr = translate(parent, {child_label: child}, images, config=InvertConfig.stylealign(steps=steps), progress=True)
    paths = save_translation(outdir / 'translate', names, tr, title='parent -> child translation (StyleAlign Z, psi 0.5)')
    clip = morph(parent, child, tr.latents.take(np.arange(1)), frames=frames)
    paths.update({f'morph_{k}': v for k, v in save_animation(outdir / 'morph', clip[0], scale=4).items()})
    print(f'wrote {outdir}/translate/translate.png (input | parent reconstruction | {child_label}) and '
          f'{outdir}/morph.gif ({frames} frames: parent -> child, latent and weights)')
    return paths
