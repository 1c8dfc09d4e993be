"""The training presets, one table: NVlabs stylegan2-ada-pytorch `train.py`'s `cfg_specs` rows, this project's
demo, and the benchmark zoo.

    config = get_config('paper256')          # an ml_collections ConfigDict (every key of base_config)
    alignjax-train --config paper256 --config.data.spec=zip:/data/ffhq256.zip --workdir runs/ffhq

`alignjax-train --config NAME` loads this file as `presets.py:NAME` (ml_collections calls `get_config(NAME)`);
the files in the repository's configs/ are one-line shims over `preset(NAME)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import ml_collections

from alignjax.eval.zoo import DEMO_PARENT, ZOO, zoo_config
from alignjax.train.config import ConfigError, base_config, small32_config

# NVlabs cfg_specs (stylegan2-ada-pytorch train.py), and `res`: the data resolution the preset is made for. -1 is
# 'auto': resolved from the resolution and device count at start-up (alignjax.train.loop.resolve_config).
#                 res    mb  mbstd fmaps  lrate   gamma  ema   ramp  map
# fmt: off
CFG_SPECS = {
    'auto':      (256,   -1,  -1,   -1,   -1,      -1,   -1,   0.05, 2),   # set data.resolution to your data's
    'stylegan2': (1024,  32,   4,    1,   0.002,   10,   10,   None, 8),   # config F
    'paper256':  (256,   64,   8,  0.5,   0.0025,   1,   20,   None, 8),   # ADA paper, 256x256
    'paper512':  (512,   64,   8,    1,   0.0025, 0.5,   20,   None, 8),
    'paper1024': (1024,  32,   4,    1,   0.002,    2,   10,   None, 8),
    'cifar':     (32,    64,  32,    1,   0.0025, 0.01, 500,   0.05, 2),   # + no PL, no mixing, D 'orig'
}
# fmt: on


def nvlabs(name: str) -> ml_collections.ConfigDict:
    """base_config with one row of CFG_SPECS applied."""
    res, mb, mbstd, fmaps, lrate, gamma, ema, ramp, mapping = CFG_SPECS[name]
    c = base_config()
    c.data.resolution = res
    c.train.batch = mb
    c.model.mbstd_group_size = mbstd
    c.model.channel_base = -1 if fmaps == -1 else int(fmaps * 32768)
    c.model.channel_max = 512
    c.model.mapping_layers = mapping
    c.train.g_lr = c.train.d_lr = lrate
    c.train.r1_gamma = gamma
    c.train.ema_kimg = ema
    c.train.ema_rampup = ramp
    if name == 'cifar':  # NVlabs train.py's special case for cifar
        c.train.pl_weight = 0.0
        c.train.style_mixing = 0.0
        c.model.d_architecture = 'orig'
    return c


def demo_parent() -> ml_collections.ConfigDict:
    """The demo's parent, trained longer: procedural `faces` at 32x32, 64 channels. This made the shipped
    checkpoint assets/demo/parent (the README has the command and its wall time; it stopped at 61.2 kimg)."""
    c = small32_config('proc:faces?n=20000')
    c.name = 'demo_parent'
    c.train.kimg = 200.0
    return c


def demo() -> ml_collections.ConfigDict:
    """The demo (`make demo`, alignjax-demo): a parent on procedural `faces`, a child fine-tuned from it on
    `toons`, then the same z through both, a translation grid and a morph, at 32x32 with 64 channels.

    The parent stage is the shipped checkpoint assets/demo/parent (made by `demo_parent`) and only the child is
    trained: about 4 kimg, a few minutes on 2 CPU cores. `--config.from_scratch=True` trains the parent too (the
    demo_parent config; ~1 hour on 2 cores). Writes <workdir>/: child/ (checkpoints, samples, metrics, final),
    compare.png, translate/, morph.gif."""
    c = demo_parent()
    c.name = 'demo'
    c.demo_outputs = True
    c.train.kimg = 60.0
    c.log.snapshot_kimg = 2.0
    c.log.grid_kimg = 2.0
    c.stages = (
        dict(name='parent', pretrained=str(DEMO_PARENT), overrides={}),
        dict(
            name='child',
            overrides={
                'data.spec': 'proc:toons?n=2000',
                'finetune.init_from': '{parent}',
                'finetune.freeze_mapping': True,
                'train.augment': 'ada',
                'train.kimg': 4.0,
                'log.tick_kimg': 0.5,
            },
        ),
    )
    return c


# Every preset by name. The zoo's are named as their configs (zoo_<model>; the table is alignjax/eval/zoo.py).
PRESETS: dict[str, Callable[[], ml_collections.ConfigDict]] = {
    **{name: functools.partial(nvlabs, name) for name in CFG_SPECS},
    'demo_parent': demo_parent,
    'demo': demo,
    **{f'zoo_{name}': functools.partial(zoo_config, name) for name in ZOO},
}
DEFAULT = 'demo'


def preset(name: str) -> ml_collections.ConfigDict:
    """The training config of preset `name` (a fresh ConfigDict). An unknown name raises ConfigError listing them."""
    if name not in PRESETS:
        raise ConfigError(f'no preset {name!r}; the presets are {", ".join(PRESETS)}')
    return PRESETS[name]()


def get_config(name: str = DEFAULT) -> ml_collections.ConfigDict:
    """ml_collections' config-file entry: `--config alignjax/configs/presets.py:paper256`."""
    return preset(name)
