"""Project images into a generator (Z, W, W+ [+ noise]), optionally translate them with aligned children.

    alignjax-invert --ckpt parent.pkl --images photos/ --space w+ --noise --outdir out/
    alignjax-invert --ckpt dog.pkl --images dogs/ --preset stylealign --translate cat.pkl wild.pkl --outdir out/
    alignjax-invert --ckpt ffhq.pkl --images 'proc:faces?n=16' --space w --steps 300 --outdir out/

(also `python invert.py` or `python -m alignjax.cli.invert`.) Inputs: image files, folders (recursively) or one
dataset spec (folder:, zip:, tfds:, proc:); each image is centre-cropped to a square and Lanczos-resized to the
generator's resolution. --images and --translate take several values: space-separated after the flag (up to
the next flag), repeated (--images a --images b) or comma-separated (a value that is an existing path is kept
whole).

Writes: DIR/latents.npz (one entry per input name: z [z_dim] or ws [num_ws, w_dim]), DIR/noise.npz (with
--noise), DIR/inversion.json (space, truncation, settings), DIR/input/<name>.png (the cropped target),
DIR/recon/<name>.png, DIR/metrics.json (per image: loss, PSNR, steps). With --translate: DIR/translate/<child>/
<name>.png, DIR/translate.png (input | parent reconstruction | one column per child) and DIR/translate.html;
with --morph also DIR/morph/<child>/<name>.gif|.mp4|.png (the image morphing into its translation).

Presets: `nvlabs` (default) is NVlabs projector.py: one W started at w_avg, latent noise scaled by w_std, per-image
noise maps (random start, regularised 1e5, renormalised), Adam lr 0.1 with ramp-up / cosine ramp-down, 1000 steps;
`stylealign` is StyleAlign's translation setting. --space / --noise / --steps ... override a preset.
Unreadable images stop the run unless --skip-bad; metrics.json maps every output name to its source path.

Loss: LPIPS(VGG16) when --lpips-vgg (torchvision vgg16 state dict) and --lpips-lin (the lpips package's
weights/v0.1/vgg.pth) are given; otherwise the weight-free 100 * MSE + 10 * (1 - multi-scale SSIM)
(--loss dfeat: the checkpoint's discriminator features + pixels).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from absl import flags

from alignjax import vis
from alignjax.apps.morphing import DEFAULT_FRAMES, DEFAULT_SECONDS, morph
from alignjax.apps.translation import Translation, decode_children, save_translation
from alignjax.apps.video import save_animation
from alignjax.cli import _apps
from alignjax.cli._apps import check_aligned, load_generator  # noqa: F401 - re-exported (alignjax.invert.cli)
from alignjax.cli._common import CliError, Command, check_outdir, entry
from alignjax.invert.images import _safe
from alignjax.invert.project import invert
from alignjax.invert.store import save_latents

MULTI = ('images', 'translate')


def command() -> Command:
    cmd = Command('alignjax-invert', __doc__)
    fv = cmd.fv
    flags.DEFINE_string('ckpt', None, 'parent checkpoint: NVlabs .pkl, rosinality .pt, TF .pkl, or dir', flag_values=fv)
    flags.mark_flag_as_required('ckpt', flag_values=fv)
    _apps.define_inversion_flags(cmd)
    flags.DEFINE_multi_string('translate', None, 'child checkpoint(s) aligned with --ckpt', flag_values=fv)
    flags.DEFINE_enum(
        'translate-noise',
        'latents',
        ['latents', 'const'],
        "children render with the inverted noise maps ('latents', when optimised) or their own",
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        'morph',
        False,
        'with --translate: also morph each image into its translation (GIF, MP4, strip PNG)',
        flag_values=fv,
    )
    flags.DEFINE_integer('frames', DEFAULT_FRAMES, 'frames of each morph (>= 2)', flag_values=fv)
    flags.DEFINE_float('seconds', DEFAULT_SECONDS, 'duration of each morph', flag_values=fv)
    return cmd


def _label(path: str, taken: set) -> str:
    stem = _safe(Path(path).stem if Path(path).suffix else Path(path).name)
    label, k = stem, 1
    while label in taken:
        k += 1
        label = f'{stem}_{k}'
    taken.add(label)
    return label


def _write_json(path: Path, obj):
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False), encoding='utf-8')
    tmp.replace(path)


@entry
def main(argv=None):
    """Exit status 0, or 1 with one `error: ...` line (the traceback with --debug or ALIGNJAX_DEBUG=1)."""
    a = _apps.parse(command(), argv, MULTI)
    if a.morph and not a.translate:
        raise CliError('--morph needs --translate CHILD')
    if a.morph and a.frames < 2:
        raise CliError('--frames must be >= 2')
    out = check_outdir(a.outdir)
    gen, ck = load_generator(a.ckpt, a.net)
    if gen.config.c_dim:
        raise CliError('conditional generators are not supported by the CLI (use alignjax.invert.invert with c=)')
    cfg = _apps.inversion_config(a)
    loss = _apps.inversion_loss(a, ck)
    children = []
    if a.translate:
        taken = set()
        for path in a.translate:
            child, _ = load_generator(path, a.net)
            check_aligned(gen, child, a.ckpt, path)
            children.append((_label(path, taken), child))
    inp = _apps.read_images(a.images, gen, a)
    names, imgs = inp.names, inp.images
    print(
        f'inverting {len(names)} image(s) into {cfg.space}{" + noise" if cfg.noise else ""} of {a.ckpt} '
        f'({gen.resolution}px), {cfg.steps} steps, loss {type(loss).__name__}, batch {a.batch}'
    )
    t0 = time.time()
    res = invert(gen, imgs, cfg, loss=loss, seed=a.seed, batch_size=a.batch, progress=not a.no_progress)
    secs = time.time() - t0
    meta = dict(
        ckpt=str(a.ckpt),
        net=a.net,
        steps=cfg.steps,
        loss=type(loss).__name__,
        seed=a.seed,
        preset=a.preset,
        config={k: v for k, v in vars(cfg).items()},
        sources=inp.sources,
    )
    save_latents(out, names, res.latents, meta)
    for i, n in enumerate(names):
        vis.save_png(out / 'input' / f'{n}.png', imgs[i])
        vis.save_png(out / 'recon' / f'{n}.png', vis.to_uint8(res.images[i]))
    metrics = {
        n: dict(
            source=inp.sources[i], loss=float(res.distance[i]), psnr=float(res.psnr[i]), steps=int(res.steps_run[i])
        )
        for i, n in enumerate(names)
    }
    summary = dict(
        mean_loss=float(np.mean(res.distance)),
        mean_psnr=float(np.mean(res.psnr)),
        seconds=secs,
        images_per_minute=len(names) / secs * 60,
        space=cfg.space,
        noise=cfg.noise,
        steps=cfg.steps,
        loss=type(loss).__name__,
        preset=a.preset,
        skipped=len(inp.skipped),
    )
    _write_json(out / 'metrics.json', dict(images=metrics, skipped=inp.skipped, warnings=inp.warnings, summary=summary))
    print(
        f'done in {secs:.1f}s: mean PSNR {summary["mean_psnr"]:.2f} dB, mean loss {summary["mean_loss"]:.4f} '
        f'-> {out}/latents.npz, {out}/recon/, {out}/metrics.json'
        + (f' ({len(inp.skipped)} unreadable image(s) skipped)' if inp.skipped else '')
    )
    if children:
        outs = decode_children(children, res.latents, noise=a.translate_noise)
        tr = Translation(latents=res.latents, inputs=imgs, recon=res.images, outputs=outs, inversion=res)
        paths = save_translation(
            out, names, tr, title=f'{Path(a.ckpt).name} -> ' + ', '.join(lbl for lbl, _ in children)
        )
        print(f'translations -> {paths["grid"]}, {paths["html"]}')
        if a.morph:
            for lbl, child in children:
                frames = morph(gen, child, res.latents, None, a.frames, progress=not a.no_progress)
                for i, n in enumerate(names):
                    save_animation(out / 'morph' / lbl / n, frames[i], a.seconds)
            print(f'morphs -> {out}/morph/')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
