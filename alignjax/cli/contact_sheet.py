"""Contact sheet of the procedural domains: one row per factor vector, one column per domain (the same factors
across a row), at several resolutions.

    alignjax-contact-sheet --out docs/procedural_domains.png --resolution 64,32

--resolution takes a comma list, repeated flags or space-separated values (--resolution 64 32). (--res is a
deprecated spelling.) The library: `alignjax.data.contact_sheet.contact_sheet`.
"""

from __future__ import annotations

from absl import flags
from PIL import Image

from alignjax.cli._common import CliError, Command, check_outfile, entry, fail
from alignjax.data.contact_sheet import contact_sheet

MULTI = ('--resolution', '--res')  # flags that took several space-separated values (argparse nargs='+')

cmd = Command('alignjax-contact-sheet', __doc__)
flags.DEFINE_string('out', 'docs/procedural_domains.png', 'the PNG to write', flag_values=cmd.fv)
flags.DEFINE_integer('rows', 8, 'factor vectors (rows)', flag_values=cmd.fv)
flags.DEFINE_integer('seed', 0, 'seed of the factor vectors', flag_values=cmd.fv)
flags.DEFINE_multi_string(
    'resolution', ['64', '32'], 'render resolutions: 64,32 or --resolution 64 32 or repeated', flag_values=cmd.fv
)
flags.DEFINE_integer('display', 128, 'cell size in pixels (renders upscaled, nearest)', flag_values=cmd.fv)
cmd.deprecated('--res', '--resolution')


def parse_ints(values, flag: str) -> list[int]:
    """['64,32', '16'] -> [64, 32, 16]; CliError naming the flag for anything that is not an integer."""
    try:
        return [int(v) for s in values for v in str(s).split(',') if v.strip()]
    except ValueError:
        raise CliError(f'{flag} {",".join(values)!r}: give integers, e.g. 64,32') from None


@entry
def main(argv=None) -> int:
    a = cmd.parse(argv, multi=MULTI)
    if a.positional:
        fail(f'{a.positional[0]}: unexpected argument (see {cmd.prog} --help)', 2)
    resolutions = parse_ints(a.resolution, '--resolution')
    if a.rows < 1 or a.display < 1 or not resolutions or min(resolutions) < 1:
        raise CliError('--rows, --display and --resolution must be >= 1')
    check_outfile(a.out)
    Image.fromarray(contact_sheet(a.rows, a.seed, resolutions, a.display)).save(a.out)
    print(a.out)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
