"""Flags and checks shared by the generator command lines (generate, invert, morph, layer-swap).

* `load_generator(path, net)`: a checkpoint's generator, its notes printed; unreadable or missing files raise
  `CliError` naming the file.
* `check_aligned(parent, child, ...)`: `CliError` unless the child decodes the parent's latents; a warning when
  its weights look unrelated to the parent's.
* `define_inversion_flags(cmd)`, `inversion_config(args)`, `inversion_loss(args, ck)`, `read_images(...)`: the
  inversion settings of `alignjax-invert` and `alignjax-morph`, one definition.
* Multi-value flags (`--images`, `--translate`, `--source`, `--target`) follow `_common`'s rule
  (`spread_values`: `--images a b c`, repeated flags, comma lists); any other bare argument is an error.
* `--no-noise` is accepted for absl's `--nonoise` (`NO_ALIASES`).
"""

from __future__ import annotations

import sys

from absl import flags

from alignjax.apps.blend import check_compatible, weight_correlation
from alignjax.cli._common import CliError, fail, message
from alignjax.data._image import BadImageError
from alignjax.errors import AlignjaxError
from alignjax.invert.images import read_inputs
from alignjax.invert.losses import make_loss
from alignjax.invert.lpips import load_lpips
from alignjax.invert.project import PRESETS, check_latents
from alignjax.invert.store import load_latents
from alignjax.io.checkpoint import load_checkpoint

# argparse spellings kept for absl's negated booleans
NO_ALIASES = {'--no-noise': '--nonoise'}

PRESET_HELP = {
    'nvlabs': 'NVlabs projector.py: one W (start w_avg, w_std-scaled latent noise) plus per-image noise maps '
    '(random start, regularised), Adam 0.1 with ramps, 1000 steps',
    'stylealign': 'StyleAlign translation: Z, z=0 start, truncation 0.5, 500 steps, noise maps optimised',
}


# ----------------------------------------------------------------------------------------------------------
# argv: aliases and leftovers.


def parse(cmd, argv, multi=()):
    """`cmd.parse` with the multi-value rule and `NO_ALIASES`; bare arguments left over are an error (exit 2)."""
    a = cmd.parse(argv, multi=multi, aliases=NO_ALIASES)
    if a.positional:
        fail(f'{a.positional[0]}: unexpected argument (see {cmd.prog} --help)', 2)
    return a


# ----------------------------------------------------------------------------------------------------------
# Generators.


def load_generator(path, net='G_ema'):
    """(generator, checkpoint) of `path`, its notes printed; CliError for a missing or unreadable file."""
    try:
        ck = load_checkpoint(path)
        gen = ck.generator(net)
    except (AlignjaxError, OSError) as e:  # (OSError: a file that cannot be read)
        raise CliError(message(e)) from None
    for note in ck.notes:
        print(f'note: {note}')
    return gen, ck


def check_aligned(parent, child, parent_path, child_path):
    """CliError unless `child` can be decoded with `parent`'s latents (same architecture and shapes); a
    warning when its synthesis weights look unrelated to the parent's (not fine-tuned from it)."""
    try:
        check_compatible(parent, child, f'{parent_path} and {child_path}')
    except ValueError as e:
        raise CliError(str(e)) from None
    r = weight_correlation(parent, child)
    if r < 0.5:
        print(
            f'warning: {child_path} does not look fine-tuned from {parent_path} (synthesis weights correlate '
            f'{r:.2f}): its translations and morphs will not correspond to the inputs',
            file=sys.stderr,
        )


def read_latents(folder, gen, flag):
    """(names, latents) of an invert.py output folder, checked against `gen`; CliError otherwise."""
    try:
        names, lat = load_latents(folder)
        check_latents(gen, lat, f'{flag} {folder}')
    except (AlignjaxError, OSError) as e:
        raise CliError(message(e)) from None
    return names, lat


# ----------------------------------------------------------------------------------------------------------
# Inversion flags (invert, morph).


def define_inversion_flags(cmd, images: bool = True):
    fv = cmd.fv
    if images:
        flags.DEFINE_multi_string(
            'images',
            None,
            'files, folders or one dataset spec (space- or comma-separated, or repeated)',
            flag_values=fv,
        )
        flags.DEFINE_string('outdir', None, 'output folder', flag_values=fv)
        flags.mark_flags_as_required(['images', 'outdir'], flag_values=fv)
    flags.DEFINE_string('net', 'G_ema', "generator in the checkpoint: 'G_ema' (default) or 'G'", flag_values=fv)
    flags.DEFINE_enum(
        'preset', 'nvlabs', sorted(PRESET_HELP), '; '.join(f'{k}: {v}' for k, v in PRESET_HELP.items()), flag_values=fv
    )
    flags.DEFINE_enum(
        'space', None, ['z', 'w', 'w+'], "default: the preset's (nvlabs: w, stylealign: z)", flag_values=fv
    )
    flags.DEFINE_boolean(
        'noise',
        None,
        "also optimise per-image noise maps (--nonoise or --no-noise: never); default: the preset's",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        'noise-init', None, ['const', 'random'], "start of the noise maps (default: the preset's)", flag_values=fv
    )
    flags.DEFINE_integer('steps', None, 'default 1000 (stylealign: 500)', flag_values=fv)
    flags.DEFINE_float('lr', None, 'Adam learning rate (default 0.1)', flag_values=fv)
    flags.DEFINE_float('noise-reg', None, 'noise-map regulariser weight (default 1e5)', flag_values=fv)
    flags.DEFINE_float('psi', None, 'truncation psi for Z (stylealign: 0.5)', flag_values=fv)
    flags.DEFINE_integer('psi-cutoff', None, 'Z: truncate only the first K ws', flag_values=fv)
    flags.DEFINE_enum(
        'loss', 'auto', ['auto', 'lpips', 'lpips+pixel', 'pixel', 'mse', 'dfeat'], 'distance', flag_values=fv
    )
    flags.DEFINE_string('lpips-vgg', None, 'torchvision VGG16 state dict (.pth)', flag_values=fv)
    flags.DEFINE_string(
        'lpips-lin', None, "the lpips package's linear heads (lpips/weights/v0.1/vgg.pth)", flag_values=fv
    )
    flags.DEFINE_float('stop-below', None, 'per image: stop once the loss is below', flag_values=fv)
    flags.DEFINE_integer('stop-patience', None, 'per image: stop after N steps w/o progress', flag_values=fv)
    flags.DEFINE_integer('batch', 8, 'images optimised together', lower_bound=1, flag_values=fv)
    flags.DEFINE_integer('max-images', None, 'invert at most this many (readable) images', flag_values=fv)
    flags.DEFINE_boolean(
        'skip-bad', False, 'leave out unreadable images (listed in metrics.json) instead of stopping', flag_values=fv
    )
    flags.DEFINE_integer('seed', 0, 'seed of the latent and noise-map starts', flag_values=fv)
    flags.DEFINE_boolean('no-progress', False, 'no progress bars', flag_values=fv)


def inversion_config(a):
    """The preset's InvertConfig with the flags given; CliError for values it refuses."""
    kw = {}
    for name, field in [
        ('space', 'space'),
        ('noise', 'noise'),
        ('noise_init', 'noise_init'),
        ('steps', 'steps'),
        ('lr', 'lr'),
        ('noise_reg', 'noise_reg'),
        ('psi', 'truncation_psi'),
        ('psi_cutoff', 'truncation_cutoff'),
        ('stop_below', 'stop_below'),
        ('stop_patience', 'stop_patience'),
    ]:
        v = getattr(a, name, None)
        if v is not None:
            kw[field] = v
    try:
        return PRESETS[a.preset]().replace(**kw)
    except ValueError as e:
        raise CliError(str(e)) from None


def inversion_loss(a, ck=None):
    lp = None
    if a.lpips_vgg:
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
    try:
        inp = read_inputs(sources, gen.resolution, a.max_images, bad='skip' if a.skip_bad else 'fail')
    except BadImageError as e:
        raise CliError(f'{e} (pass --skip-bad to leave unreadable images out)') from None
    except (OSError, ValueError) as e:
        raise CliError(f'{flag}: {message(e)}') from None
    for path, reason in inp.skipped.items():
        print(f'warning: skipped {path}: {reason}', file=sys.stderr)
    for w in inp.warnings:
        print(f'warning: {w}', file=sys.stderr)
    return inp
