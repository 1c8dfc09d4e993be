"""Write any dataset spec as an NVlabs `dataset_tool.py`-layout zip (StyleGAN2-ADA / StyleGAN3 train on it).

    alignjax-export-data --source 'proc:toons?seed=1' --max-images 5000 --resolution 256 --out toons256.zip

Labels: --labels source (default) writes the dataset's own labels (one-hot ones as class integers), factors the
procedural factor vector, none writes null. --annotations adds annotations.npz (factors, landmarks, visibility,
masks) for proc: sources. Unreadable images stop the export (naming the file) unless --skip-bad. (--n / --res
are deprecated spellings of --max-images / --resolution.) The library: `alignjax.data.export.export`.
"""

from __future__ import annotations

from absl import flags

from alignjax.cli._common import CliError, Command, check_outfile, entry, fail
from alignjax.data._image import BadImageError
from alignjax.data.export import SKIP_HINT, export

cmd = Command('alignjax-export-data', __doc__)
flags.DEFINE_string('source', None, 'dataset spec, e.g. proc:faces?seed=0, folder:/x, zip:/y.zip', flag_values=cmd.fv)
flags.DEFINE_integer('max-images', None, 'number of images (default: all)', flag_values=cmd.fv)
flags.DEFINE_integer('resolution', 256, 'output resolution', flag_values=cmd.fv)
flags.DEFINE_string('out', None, 'output .zip', flag_values=cmd.fv)
flags.DEFINE_enum(
    'labels', 'source', ['source', 'factors', 'none'], 'labels written to dataset.json', flag_values=cmd.fv
)
flags.DEFINE_boolean('annotations', False, 'add annotations.npz (proc: sources)', flag_values=cmd.fv)
flags.DEFINE_integer('compress-level', 0, 'PNG zlib level (NVlabs uses 0)', flag_values=cmd.fv)
flags.DEFINE_boolean('skip-bad', False, 'leave unreadable images out instead of stopping', flag_values=cmd.fv)
flags.mark_flags_as_required(['source', 'out'], flag_values=cmd.fv)
cmd.deprecated('--n', '--max-images')
cmd.deprecated('--res', '--resolution')


@entry
def main(argv=None) -> int:
    a = cmd.parse(argv)
    if a.positional:
        fail(f'{a.positional[0]}: unexpected argument (see {cmd.prog} --help)', 2)
    if a.resolution < 1:
        raise CliError('--resolution must be >= 1')
    if a.max_images is not None and a.max_images < 1:
        raise CliError('--max-images must be >= 1')
    if not 0 <= a.compress_level <= 9:
        raise CliError('--compress-level must be in 0..9')
    check_outfile(a.out)
    if (a.labels == 'factors' or a.annotations) and not a.source.startswith('proc:'):
        raise CliError('--labels factors and --annotations need a proc: source')
    try:
        export(
            a.source,
            a.out,
            n=a.max_images,
            resolution=a.resolution,
            labels=a.labels,
            annotations=a.annotations,
            compress_level=a.compress_level,
            bad_file_policy='skip' if a.skip_bad else 'fail',
        )
    except BadImageError as e:
        raise CliError(str(e.with_hint(SKIP_HINT))) from None
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
