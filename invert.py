#!/usr/bin/env python
"""Project images into a StyleGAN2 generator (Z, W, W+ [+ noise]) and translate them with aligned children.

    python invert.py --ckpt PATH --images PATH_OR_SPEC --space {z,w,w+} [--noise] [--steps N] --outdir DIR
    python invert.py --ckpt parent.pkl --images dogs/ --preset stylealign --translate cat.pkl --outdir out

The same program as `alignjax-invert`; see `python invert.py --help` and alignjax/cli/invert.py.
"""

import sys

from alignjax.cli.invert import main

if __name__ == '__main__':
    sys.exit(main())
