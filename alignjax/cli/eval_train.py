"""Train one domain evaluator on procedural renders (exact resume; held-out accuracy at the end).

    alignjax-train-evaluator --domain faces --res 32 --out assets/evaluators/faces_32
    python -m alignjax.eval.train ...          # the same command line

Training state (params, Adam, step) is checkpointed every 500 steps in OUT/_train/ (orbax); running the same
command again continues from there, bit-exactly (batches are pure functions of seed and step). When done, OUT
holds the evaluator (evaluator.json + params/) and accuracy.json (held-out scores, clean and degraded), and
OUT/_train/ is removed unless --keep-state. The library: `alignjax.eval.train.train_evaluator`.
"""

from __future__ import annotations

from absl import flags

from alignjax.cli._common import CliError, Command, entry, fail
from alignjax.data import procedural
from alignjax.eval.scores import summary_line
from alignjax.eval.train import TrainSettings, rescore, train_evaluator

cmd = Command('alignjax-train-evaluator', __doc__)
flags.DEFINE_enum('domain', None, list(procedural.DOMAINS), 'the procedural domain', flag_values=cmd.fv)
flags.DEFINE_integer('res', 32, 'image resolution', flag_values=cmd.fv)
flags.DEFINE_string('out', None, 'output directory (the evaluator)', flag_values=cmd.fv)
flags.DEFINE_integer('steps', TrainSettings.steps, 'training steps', flag_values=cmd.fv)
flags.DEFINE_integer('batch', TrainSettings.batch, 'images per step', flag_values=cmd.fv)
flags.DEFINE_integer('width', 16, 'channels at full resolution', flag_values=cmd.fv)
flags.DEFINE_integer('eval-n', 2000, 'held-out renders scored at the end', flag_values=cmd.fv)
flags.DEFINE_boolean('keep-state', False, 'keep OUT/_train (the resumable state)', flag_values=cmd.fv)
flags.DEFINE_boolean('rescore', False, 'only recompute OUT/accuracy.json of a trained evaluator', flag_values=cmd.fv)
flags.mark_flags_as_required(['domain', 'out'], flag_values=cmd.fv)


@entry
def main(argv=None) -> int:
    a = cmd.parse(argv)
    if a.positional:
        fail(f'{a.positional[0]}: unexpected argument (see {cmd.prog} --help)', 2)
    for name in ('res', 'steps', 'batch', 'width', 'eval_n'):
        if getattr(a, name) < 1:
            raise CliError(f'--{name.replace("_", "-")} must be >= 1, got {getattr(a, name)}')
    if a.rescore:
        acc = rescore(a.out, n=a.eval_n)
        print(f'{a.domain}@{a.res}: {summary_line(acc["clean"])}; wrote {a.out}/accuracy.json')
        return 0
    train_evaluator(
        a.domain,
        a.res,
        a.out,
        TrainSettings(steps=a.steps, batch=a.batch),
        width=a.width,
        keep_state=a.keep_state,
        eval_n=a.eval_n,
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
