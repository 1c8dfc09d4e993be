"""`python invert.py`: project images into a generator, optionally translate them with aligned children.

    python invert.py --ckpt parent.pkl --images photos/ --space w+ --noise --outdir out/
    python invert.py --ckpt dog.pkl --images dogs/ --preset stylealign --translate cat.pkl wild.pkl --outdir out/
    python invert.py --ckpt ffhq.pkl --images 'proc:faces?n=16' --space w --steps 300 --outdir out/

Inputs: image files, folders (recursively) or one dataset spec (folder:, zip:, tfds:, proc:); each image is
centre-cropped to a square and Lanczos-resized to the generator's resolution.

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

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def add_invert_args(p: argparse.ArgumentParser, images: bool = True):
    from alignjax import _cli
    g = p.add_argument_group('inversion')
    if images:
        g.add_argument('--images', nargs='+', required=True, help='files, folders or one dataset spec')
        g.add_argument('--outdir', required=True)
    g.add_argument('--net', default='G_ema', help="generator in the checkpoint: 'G_ema' (default) or 'G'")
    g.add_argument('--preset', choices=sorted(PRESET_HELP), default='nvlabs',
                   help='; '.join(f'{k}: {v}' for k, v in PRESET_HELP.items()))
    g.add_argument('--space', choices=['z', 'w', 'w+'], default=None, help='default: the preset\'s (nvlabs: w, '
                                                                           'stylealign: z)')
    g.add_argument('--noise', action='store_true', default=None, help='also optimise per-image noise maps')
    g.add_argument('--no-noise', dest='noise', action='store_false', help='never optimise noise maps')
    g.add_argument('--noise-init', choices=['const', 'random'], default=None)
    g.add_argument('--steps', type=int, default=None, help='default 1000 (stylealign: 500)')
    g.add_argument('--lr', type=float, default=None)
    g.add_argument('--noise-reg', type=float, default=None)
    g.add_argument('--psi', type=float, default=None, help='truncation psi for Z (stylealign: 0.5)')
    g.add_argument('--psi-cutoff', type=int, default=None, help='Z: truncate only the first K ws')
    g.add_argument('--loss', default='auto', choices=['auto', 'lpips', 'lpips+pixel', 'pixel', 'mse', 'dfeat'])
    g.add_argument('--lpips-vgg', help='torchvision VGG16 state dict (.pth)')
    g.add_argument('--lpips-lin', help="the lpips package's linear heads (lpips/weights/v0.1/vgg.pth)")
    g.add_argument('--stop-below', type=float, default=None, help='per image: stop once the loss is below')
    g.add_argument('--stop-patience', type=int, default=None, help='per image: stop after N steps w/o progress')
    g.add_argument('--batch', type=int, default=8, help='images optimised together')
    g.add_argument('--max-images', type=int, default=None, help='invert at most this many (readable) images')
    g.add_argument('--skip-bad', action='store_true', help='leave out unreadable images (listed in '
                                                           'metrics.json) instead of stopping')
    g.add_argument('--seed', type=int, default=0)
    g.add_argument('--no-progress', action='store_true')
    _cli.add_debug(p)


PRESET_HELP = {
    'nvlabs': "NVlabs projector.py: one W (start w_avg, w_std-scaled latent noise) plus per-image noise maps "
              "(random start, regularised), Adam 0.1 with ramps, 1000 steps",
    'stylealign': 'StyleAlign translation: Z, z=0 start, truncation 0.5, 500 steps, noise maps optimised',
}


def config_from_args(a):
    from alignjax.invert.project import PRESETS
    base = PRESETS[a.preset]()
    kw = {}
    for name, field in [('space', 'space'), ('noise', 'noise'), ('noise_init', 'noise_init'), ('steps', 'steps'),
                        ('lr', 'lr'), ('noise_reg', 'noise_reg'), ('psi', 'truncation_psi'),
                        ('psi_cutoff', 'truncation_cutoff'), ('stop_below', 'stop_below'),
                        ('stop_patience', 'stop_patience')]:
        v = getattr(a, name, None)
        if v is not None:
            kw[field] = v
    return base.replace(**kw)


def load_generator(path, net='G_ema'):
    from alignjax._cli import CliError
    from alignjax.io.safe_pickle import CheckpointError
    from alignjax.model import load_checkpoint
    try:
        ck = load_checkpoint(path)
        gen = ck.generator(net)
    except (CheckpointError, FileNotFoundError, KeyError) as e:
        from alignjax._cli import message
        raise CliError(message(e)) from None
    for note in ck.notes:
        print(f'note: {note}')
    return gen, ck


def check_aligned(parent, child, parent_path, child_path):
    """CliError unless `child` can be decoded with `parent`'s latents (same architecture and shapes); a
    warning when its synthesis weights look unrelated to the parent's (not fine-tuned from it)."""
    from alignjax._cli import CliError
    from alignjax.apps.blend import check_compatible, weight_correlation
    try:
        check_compatible(parent, child, f'{parent_path} and {child_path}')
    except ValueError as e:
        raise CliError(str(e)) from None
    r = weight_correlation(parent, child)
    if r < 0.5:
        print(f'warning: {child_path} does not look fine-tuned from {parent_path} (synthesis weights correlate '
              f'{r:.2f}): its translations and morphs will not correspond to the inputs', file=sys.stderr)


def loss_from_args(a, ck=None):
    from alignjax._cli import CliError
    from alignjax.invert.losses import make_loss
    lp = None
    if a.lpips_vgg:
        from alignjax.invert.lpips import load_lpips
        try:
            lp = load_lpips(a.lpips_vgg, a.lpips_lin)
        except Exception as e:  # noqa: BLE001 - report any unreadable weight file
            raise CliError(f'cannot load LPIPS weights: {e}') from None
    elif a.lpips_lin:
        raise CliError('--lpips-lin needs --lpips-vgg (the VGG16 trunk)')
    disc = None
    if a.loss == 'dfeat':
        if ck is None or 'D' not in ck.nets:
            raise CliError('--loss dfeat needs a checkpoint with a discriminator')
        disc = ck.discriminator()
    try:
        return make_loss(a.loss, lpips=lp, disc=disc)
    except ValueError as e:
        raise CliError(str(e)) from None


def read_images(sources, gen, a, flag='--images'):
    """`read_inputs` for a CLI: bad files fail with a hint at --skip-bad (or are skipped and reported), tiny
    images are warned about."""
    from alignjax._cli import CliError
    from alignjax.data._image import BadImageError
    from alignjax.invert.images import read_inputs
    try:
        inp = read_inputs(sources, gen.resolution, a.max_images, bad='skip' if a.skip_bad else 'fail')
    except BadImageError as e:
        raise CliError(f'{e} (pass --skip-bad to leave unreadable images out)') from None
    except (OSError, ValueError) as e:
        from alignjax._cli import message
        raise CliError(f'{flag}: {message(e)}') from None
    for path, reason in inp.skipped.items():
        print(f'warning: skipped {path}: {reason}', file=sys.stderr)
    for w in inp.warnings:
        print(f'warning: {w}', file=sys.stderr)
    return inp


def _label(path: str, taken: set) -> str:
    from alignjax.invert.images import _safe
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


def _main(argv=None):
    from alignjax import _cli
    p = argparse.ArgumentParser(prog='invert.py', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', required=True, help='parent checkpoint: NVlabs .pkl, rosinality .pt, TF .pkl, or dir')
    add_invert_args(p)
    p.add_argument('--translate', nargs='+', metavar='CHILD', help='child checkpoint(s) aligned with --ckpt')
    p.add_argument('--translate-noise', choices=['latents', 'const'], default='latents',
                   help="children render with the inverted noise maps ('latents', when optimised) or their own")
    p.add_argument('--morph', action='store_true', help='with --translate: also morph each image into its '
                                                          'translation (GIF, MP4, strip PNG)')
    p.add_argument('--frames', type=int, default=110)
    p.add_argument('--seconds', type=float, default=8.0)
    a = p.parse_args(argv)
    if a.morph and not a.translate:
        p.error('--morph needs --translate CHILD')
    if a.batch < 1:
        p.error('--batch must be >= 1')

    from alignjax import vis
    from alignjax.invert.project import invert
    from alignjax.invert.store import save_latents

    out = _cli.check_outdir(a.outdir)
    gen, ck = load_generator(a.ckpt, a.net)
    if gen.config.c_dim:
        raise _cli.CliError('conditional generators are not supported by the CLI (use alignjax.invert.invert '
                            'with c=)')
    try:
        cfg = config_from_args(a)
    except ValueError as e:
        raise _cli.CliError(str(e)) from None
    loss = loss_from_args(a, ck)
    children = []
    if a.translate:
        taken = set()
        for path in a.translate:
            child, _ = load_generator(path, a.net)
            check_aligned(gen, child, a.ckpt, path)
            children.append((_label(path, taken), child))
    inp = read_images(a.images, gen, a)
    names, imgs = inp.names, inp.images
    print(f'inverting {len(names)} image(s) into {cfg.space}{" + noise" if cfg.noise else ""} of {a.ckpt} '
          f'({gen.resolution}px), {cfg.steps} steps, loss {type(loss).__name__}, batch {a.batch}')
    t0 = time.time()
    res = invert(gen, imgs, cfg, loss=loss, seed=a.seed, batch_size=a.batch, progress=not a.no_progress)
    secs = time.time() - t0
    meta = dict(ckpt=str(a.ckpt), net=a.net, steps=cfg.steps, loss=type(loss).__name__, seed=a.seed,
                preset=a.preset, config={k: v for k, v in vars(cfg).items()}, sources=inp.sources)
    save_latents(out, names, res.latents, meta)
    for i, n in enumerate(names):
        vis.save_png(out / 'input' / f'{n}.png', imgs[i])
        vis.save_png(out / 'recon' / f'{n}.png', vis.to_uint8(res.images[i]))
    metrics = {n: dict(source=inp.sources[i], loss=float(res.distance[i]), psnr=float(res.psnr[i]),
                       steps=int(res.steps_run[i])) for i, n in enumerate(names)}
    summary = dict(mean_loss=float(np.mean(res.distance)), mean_psnr=float(np.mean(res.psnr)),
                   seconds=secs, images_per_minute=len(names) / secs * 60, space=cfg.space, noise=cfg.noise,
                   steps=cfg.steps, loss=type(loss).__name__, preset=a.preset, skipped=len(inp.skipped))
    _write_json(out / 'metrics.json', dict(images=metrics, skipped=inp.skipped, warnings=inp.warnings,
                                           summary=summary))
    print(f'done in {secs:.1f}s: mean PSNR {summary["mean_psnr"]:.2f} dB, mean loss {summary["mean_loss"]:.4f} '
          f'-> {out}/latents.npz, {out}/recon/, {out}/metrics.json'
          + (f' ({len(inp.skipped)} unreadable image(s) skipped)' if inp.skipped else ''))
    if children:
        from alignjax.apps.translate import Translation, decode_children, save_translation
        outs = decode_children(children, res.latents, noise=a.translate_noise)
        tr = Translation(latents=res.latents, inputs=imgs, recon=res.images, outputs=outs, inversion=res)
        paths = save_translation(out, names, tr, title=f'{Path(a.ckpt).name} -> ' +
                                 ', '.join(lbl for lbl, _ in children))
        print(f'translations -> {paths["grid"]}, {paths["html"]}')
        if a.morph:
            from alignjax.apps.morph import morph
            from alignjax.apps.video import save_animation
            for lbl, child in children:
                frames = morph(gen, child, res.latents, None, a.frames, progress=not a.no_progress)
                for i, n in enumerate(names):
                    save_animation(out / 'morph' / lbl / n, frames[i], a.seconds)
            print(f'morphs -> {out}/morph/')
    return 0


def main(argv=None):
    """invert.py: exit status 0, or 1 with one `error: ...` line (the traceback with --debug)."""
    from alignjax._cli import entry
    return entry(_main)(argv)
