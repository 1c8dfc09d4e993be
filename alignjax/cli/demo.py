"""The demo (`make demo`): the training stages of the demo preset -- the shipped parent (assets/demo/parent,
32x32, procedural faces) and a child fine-tuned from it on procedural toons (about 4 kimg, a few minutes on
2 CPU cores) -- then the applications on the two: the same z through both (compare.png), a translation grid
(translate/) and a morph (morph.gif).

    alignjax-demo --workdir runs/demo              # or: python -m alignjax.cli.demo --workdir runs/demo
    alignjax-demo --config.from_scratch=True       # train the parent too (~1 hour on 2 cores)

The flags are alignjax-train's (--config defaults to the demo preset). Intentionally kept short: the logic is
`alignjax.apps.demo.run_demo(config, workdir)`.
"""

from __future__ import annotations

from alignjax.apps.demo import run_demo
from alignjax.cli import train as train_cli


def main(argv=None):
    train_cli.main(argv, job=run_demo, prog='alignjax-demo', doc=__doc__)


if __name__ == '__main__':
    main()
