"""Train a StyleGAN2, or fine-tune a child (a shim over `alignjax.cli.train`, the `alignjax-train` command).

    python train.py --config configs/paper256.py --config.data.spec=zip:/data/ffhq256.zip --workdir runs/ffhq
    python train.py --config paper256 ...                                  # a preset name works too
    python train.py --config configs/demo.py --workdir runs/demo          # the demo: parent, then child

`python train.py --help` lists every config key with its default.
"""

from alignjax.cli.train import __doc__ as DOC
from alignjax.cli.train import main

if __name__ == '__main__':
    main(prog='train.py', doc=DOC)
