"""Cross-domain morph: a source image (inverted in the parent) morphing into a target (inverted in the child),
latent and every synthesis weight interpolated; without a target, each source morphs into its own translation.

    alignjax-morph --parent P.pkl --child C.pkl --source img.png [--target cat.png] --outdir out
    alignjax-morph --parent P.pkl --child C.pkl --source-latents inv/ --target-latents inv_child/ --outdir out

(also `python -m alignjax.cli.morph` or `python -m alignjax.apps.morphing`.) Writes OUTDIR/<source>[_to_<target>]
.gif|.mp4|.png (--formats) and OUTDIR/strips.png for several sources. --source and --target take several
values: space-separated after the flag (up to the next flag), repeated, or comma-separated (a value that is an
existing path is kept whole). The inversion flags are alignjax-invert's. The library: alignjax.apps.morphing.
"""

from __future__ import annotations

import numpy as np
from absl import flags

from alignjax import vis
from alignjax.apps.morphing import DEFAULT_FRAMES, DEFAULT_SECONDS, IMPLS, morph
from alignjax.apps.video import save_animation, strip
from alignjax.cli import _apps
from alignjax.cli._common import CliError, Command, check_outdir, entry
from alignjax.invert.project import invert

MULTI = ('source', 'target')
FORMATS = ('gif', 'mp4', 'png')


def command() -> Command:
    cmd = Command('alignjax-morph', __doc__)
    fv = cmd.fv
    flags.DEFINE_string('parent', None, 'parent checkpoint (the source domain)', flag_values=fv)
    flags.DEFINE_string('child', None, 'child checkpoint fine-tuned from the parent (target domain)', flag_values=fv)
    flags.DEFINE_multi_string(
        'source', None, 'source image(s) / folder / dataset spec, inverted in the parent', flag_values=fv
    )
    flags.DEFINE_string(
        'source-latents', None, 'an invert.py output folder for the parent instead of --source', flag_values=fv
    )
    flags.DEFINE_multi_string(
        'target',
        None,
        'target image(s), inverted in the child; omitted: morph each source into its own translation',
        flag_values=fv,
    )
    flags.DEFINE_string(
        'target-latents', None, 'an invert.py output folder for the child instead of --target', flag_values=fv
    )
    flags.DEFINE_integer('frames', DEFAULT_FRAMES, 'frames per morph', flag_values=fv)
    flags.DEFINE_float('seconds', DEFAULT_SECONDS, 'duration of the GIF / MP4', flag_values=fv)
    flags.DEFINE_integer('scale', 1, 'integer upscaling of the written frames', lower_bound=1, flag_values=fv)
    flags.DEFINE_enum('impl', 'fused', IMPLS, 'morph implementation (see alignjax.apps.morphing)', flag_values=fv)
    flags.DEFINE_string('formats', ','.join(FORMATS), 'any of gif, mp4, png (strip)', flag_values=fv)
    flags.DEFINE_string('outdir', None, 'output folder', flag_values=fv)
    flags.mark_flags_as_required(['parent', 'child', 'outdir'], flag_values=fv)
    _apps.define_inversion_flags(cmd, images=False)
    return cmd


@entry
def main(argv=None):
    """Exit 0, or 1 with one `error: ...` line (the traceback with --debug or ALIGNJAX_DEBUG=1)."""
    a = _apps.parse(command(), argv, MULTI)
    if not (a.source or a.source_latents):
        raise CliError('give --source or --source-latents')
    if a.source and a.source_latents:
        raise CliError('give --source or --source-latents, not both')
    if a.target and a.target_latents:
        raise CliError('give --target or --target-latents, not both')
    if a.frames < 2:
        raise CliError('--frames must be >= 2')
    formats = tuple(f.strip() for f in a.formats.split(',') if f.strip())
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise CliError(f'--formats: unknown format(s) {unknown} (any of gif, mp4, png)')
    # Everything that can be checked is checked before the first (expensive) inversion.
    outdir = check_outdir(a.outdir)
    parent, ck_p = _apps.load_generator(a.parent, a.net)
    child, _ = _apps.load_generator(a.child, a.net)
    _apps.check_aligned(parent, child, a.parent, a.child)
    cfg = _apps.inversion_config(a)
    loss = _apps.inversion_loss(a, ck_p)

    src = tgt = src_imgs = tgt_imgs = None
    tgt_names = None
    if a.source_latents:
        src_names, src = _apps.read_latents(a.source_latents, parent, '--source-latents')
    else:
        inp = _apps.read_images(a.source, parent, a, '--source')
        src_names, src_imgs = inp.names, inp.images
    if a.target_latents:
        tgt_names, tgt = _apps.read_latents(a.target_latents, child, '--target-latents')
    elif a.target:
        inp = _apps.read_images(a.target, child, a, '--target')
        tgt_names, tgt_imgs = inp.names, inp.images
    if tgt_names is not None and len(tgt_names) not in (1, len(src_names)):
        raise CliError(f'{len(src_names)} source(s) but {len(tgt_names)} targets (give one target or as many)')

    for which, imgs, gen, label in (
        ('src', src_imgs, parent, 'source in parent'),
        ('tgt', tgt_imgs, child, 'target in child'),
    ):
        if imgs is None:
            continue
        res = invert(
            gen,
            imgs,
            cfg,
            loss=loss,
            seed=a.seed,
            batch_size=a.batch,
            progress=not a.no_progress,
            desc=f'invert ({label})',
        )
        print(f'{label}: inverted {len(imgs)} image(s), PSNR ' + ', '.join(f'{v:.1f}' for v in res.psnr))
        if which == 'src':
            src = res.latents
        else:
            tgt = res.latents
    frames = morph(parent, child, src, tgt, a.frames, impl=a.impl, progress=not a.no_progress)
    strips = []
    for i, name in enumerate(src_names):
        label = name if tgt_names is None else f'{name}_to_{tgt_names[i if len(tgt_names) > 1 else 0]}'
        written = save_animation(outdir / label, frames[i], a.seconds, formats, scale=a.scale)
        strips.append(vis.to_uint8(frames[i]))
        print(f'{label}: ' + ', '.join(str(v) for v in written.values()))
    if len(strips) > 1 and 'png' in formats:
        vis.save_png(outdir / 'strips.png', np.concatenate([strip(s) for s in strips], axis=0))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
