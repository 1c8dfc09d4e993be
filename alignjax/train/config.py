"""The training config schema (ml_collections). Preset files in configs/ start from `base_config()`.

A value of -1 means 'auto' and is resolved at start-up as NVlabs' `auto` config does (see
`alignjax.train.loop.resolve_config`).
"""
from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from alignjax.errors import AlignjaxError


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.resume = True                      # continue from the workdir's latest checkpoint (same config only);
                                         # False: start afresh, the old run moved to <workdir>/replaced-<time>/

    c.data = ml_collections.ConfigDict(dict(
        spec='proc:faces',               # folder:/p, zip:/p.zip, tfds:name[:split], proc:faces?n=...
        resolution=256, xflip=False, bad_file_policy='fail', in_memory=placeholder(bool), max_images=placeholder(int),
        workers=0))

    c.model = ml_collections.ConfigDict(dict(
        z_dim=512, w_dim=512, mapping_layers=8, mapping_lr_mul=0.01, channel_base=32768, channel_max=512,
        conv_clamp=placeholder(float),
        mbstd_group_size=4, mbstd_num_channels=1,
        impl=ml_collections.ConfigDict(dict(modconv='shared', upconv='phase', fir='polyphase', downconv='s2d',
                                           dtype='float32'))))

    c.train = ml_collections.ConfigDict(dict(
        kimg=25000.0, batch=32, g_lr=0.002, d_lr=0.002, betas=(0.0, 0.99), eps=1e-8,
        r1_gamma=10.0, r1_interval=16, pl_weight=2.0, pl_interval=4, pl_batch_shrink=2, pl_decay=0.01,
        style_mixing=0.9, ema_kimg=10.0, ema_rampup=placeholder(float),
        augment='none',                  # 'none' | 'ada' | 'diffaugment'
        ada_spec='bgc', ada_target=0.6, ada_interval=4, ada_kimg=500.0,
        diffaugment_policy='color,translation,cutout'))

    c.finetune = ml_collections.ConfigDict(dict(
        init_from='',                    # any checkpoint alignjax.load_checkpoint reads
        freeze_mapping=False,            # keep the mapping network fixed
        freeze_d=0,                      # FreezeD: freeze the first k D blocks (from the image side)
        freeze_g_regex=(), freeze_d_regex=()))   # regexes over 'synthesis/b8/conv0/weight'-style paths

    c.log = ml_collections.ConfigDict(dict(
        tick_kimg=4.0, snapshot_kimg=200.0, grid_kimg=200.0, keep=3, grid_size=32, grid_cols=8, grid_seed=0,
        compare_psi=0.7))
    c.debug = ml_collections.ConfigDict(dict(kill_at_step=0))   # tests: SIGKILL after the save at this step
                                         # (and $ALIGNJAX_FAULT: see alignjax/train/faults.py)
    c.stages = ()                        # multi-stage runs, e.g. configs/demo.py
    return c


def small32_config(spec: str) -> ml_collections.ConfigDict:
    """The demo's model and hyperparameters on `spec`: 32x32, 64 channels everywhere, z = w = 128, 4 mapping
    layers, batch 16, NVlabs 'auto' R1 gamma and EMA. The demo parent and the benchmark zoo start from it."""
    c = base_config()
    c.data.spec = spec
    c.data.resolution = 32
    c.data.xflip = True
    c.model.z_dim = c.model.w_dim = 128
    c.model.mapping_layers = 4
    c.model.channel_base = 2048          # 64 channels at every resolution up to 32x32
    c.model.channel_max = 64
    c.model.mbstd_group_size = 4
    c.train.batch = 16
    c.train.g_lr = c.train.d_lr = 0.0025
    c.train.r1_gamma = 0.0002 * 32 ** 2 / 16          # NVlabs 'auto' gamma for this resolution and batch
    c.train.ema_kimg = 16 * 10 / 32
    c.train.ema_rampup = 0.05
    c.log.tick_kimg = 1.0
    c.log.snapshot_kimg = 5.0
    c.log.grid_kimg = 5.0
    return c


def nvlabs_preset(c, *, batch, mbstd, fmaps, lrate, gamma, ema, ramp, mapping):
    """Apply one row of NVlabs stylegan2-ada-pytorch train.py's cfg_specs."""
    c.train.batch = batch
    c.model.mbstd_group_size = mbstd
    c.model.channel_base = -1 if fmaps == -1 else int(fmaps * 32768)
    c.model.channel_max = 512
    c.model.mapping_layers = mapping
    c.train.g_lr = c.train.d_lr = lrate
    c.train.r1_gamma = gamma
    c.train.ema_kimg = ema
    c.train.ema_rampup = ramp
    return c


# Keys that may change between a run and its resume: how long to train, logging, debugging and how the data is
# read. Everything else must match the config stored with the snapshots (`config_differences`).
RESUMABLE_KEYS = ('resume', 'name', 'stages', 'from_scratch', 'demo_outputs', 'train.kimg', 'log.', 'debug.',
                  'data.workers', 'data.in_memory', 'finetune.init_from')


class ConfigError(AlignjaxError, ValueError):
    """A config value that cannot work (named with its key and the accepted values)."""


def flatten(tree, prefix: str = '', lists: bool = True) -> dict:
    """{'model.w_dim': 32, ...} from a nested dict / ConfigDict (tuples become lists, as in JSON)."""
    out = {}
    items = tree.items() if hasattr(tree, 'items') else []
    for k, v in items:
        key = f'{prefix}{k}'
        if hasattr(v, 'items'):
            out.update(flatten(v, key + '.', lists))
        else:
            out[key] = list(v) if lists and isinstance(v, tuple) else v
    return out


def config_differences(stored: dict, now: dict, ignore=RESUMABLE_KEYS) -> list[tuple[str, object, object]]:
    """[(key, stored value, current value)] over flattened configs, skipping the resumable keys."""
    a, b = flatten(stored), flatten(now)
    skip = lambda k: any(k == i or (i.endswith('.') and k.startswith(i)) for i in ignore)
    missing = object()
    diffs = []
    for k in sorted(set(a) | set(b)):
        if skip(k):
            continue
        x, y = a.get(k, missing), b.get(k, missing)
        if _norm(x) != _norm(y):
            diffs.append((k, '(absent)' if x is missing else x, '(absent)' if y is missing else y))
    return diffs


def _norm(v):
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


def validate_config(c) -> None:
    """Reject values that would run but make no sense (before any data is read or anything compiled)."""
    def positive(key, integer=False):
        node = c
        for part in key.split('.'):
            node = node[part]
        if node is None or isinstance(node, bool) or not node > 0 or (integer and int(node) != node):
            kind = 'a positive integer' if integer else 'positive'
            raise ConfigError(f'--config.{key}={node!r}: must be {kind}')
    positive('train.kimg')
    if c.train.batch != -1:
        positive('train.batch', integer=True)
    for k in ('log.tick_kimg', 'log.snapshot_kimg', 'log.grid_kimg'):
        positive(k)
    positive('log.keep', integer=True)
    res = c.data.resolution
    if not isinstance(res, int) or res < 4 or res & (res - 1):
        raise ConfigError(f'--config.data.resolution={res!r}: must be a power of two, at least 4')
    if c.train.augment not in ('none', 'ada', 'diffaugment'):
        raise ConfigError(f"--config.train.augment={c.train.augment!r}: expected 'none', 'ada' or 'diffaugment'")
