"""Convert a checkpoint between formats: read any format alignjax reads, write any it writes.

    alignjax-export network-snapshot.pkl g.pt                # NVlabs .pkl -> rosinality .pt (e4e, PTI)
    alignjax-export runs/toons/final toons.pkl               # ours -> NVlabs TF layout (G, D, Gs)
    alignjax-export official-stylealign.pkl my_model         # TF .pkl -> our orbax directory
    alignjax-export g.pt g.pkl --format tf

Read: NVlabs stylegan2-ada-pytorch / stylegan3 .pkl, rosinality .pt, NVlabs TensorFlow .pkl, our directory or a
training snapshot (detected from content). Written, from DST's suffix unless --format says: .pt rosinality,
.pkl the NVlabs TensorFlow layout (NVlabs' legacy.load_network_pkl converts it on load -- a stylegan2-ada-pytorch
torch_utils pickle embeds Python source and is never written), no suffix our orbax directory. What the target
format cannot hold is printed as a note. The library: `alignjax.load_checkpoint(SRC).export(DST, format=)`.
"""

from __future__ import annotations

import time
import warnings

from absl import flags

from alignjax.cli._common import (
    CliError,
    Command,
    check_outdir,
    check_outfile,
    entry,
    fail,
)
from alignjax.io.checkpoint import load_checkpoint
from alignjax.io.export import export_format

cmd = Command('alignjax-export', __doc__.replace('\n\n', '\n\nusage: alignjax-export SRC DST [--format F]\n\n', 1))
flags.DEFINE_enum(
    'format',
    None,
    ['rosinality', 'tf', 'orbax', 'pt', 'pkl'],
    'output format (default: from DST: .pt rosinality, .pkl tf, no suffix orbax)',
    flag_values=cmd.fv,
)
flags.DEFINE_boolean(
    'allow-nonfinite', False, 'convert a checkpoint holding NaN/Inf weights anyway', flag_values=cmd.fv
)


@entry
def main(argv=None) -> int:
    a = cmd.parse(argv)
    if len(a.positional) != 2:
        fail(f'expected SRC DST, got {len(a.positional)} argument(s) (see {cmd.prog} --help)', 2)
    src, dst = a.positional
    fmt = export_format(dst, a.format)
    if fmt == 'orbax':
        check_outdir(dst, 'DST')
    else:
        check_outfile(dst, 'DST')
    if str(src).rstrip('/') == str(dst).rstrip('/'):
        raise CliError(f'SRC and DST are the same path: {src}')
    t0 = time.time()
    ck = load_checkpoint(src, allow_nonfinite=a.allow_nonfinite)
    for n in ck.notes:
        print(f'note: {n}')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        notes = ck.export(dst, format=fmt)
    said = set(notes)
    for n in notes + [str(w.message) for w in caught if str(w.message) not in said]:
        print(f'note: {n}')
    nets = ', '.join(sorted(ck.nets))
    print(f'wrote {dst} ({fmt}; {nets} from {ck.format} {src}; {ck.g_config.resolution}px) in {time.time() - t0:.1f} s')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
