"""The training config schema (ml_collections). Preset files in configs/ start from `base_config()`.

A value of -1 means 'auto' and is resolved at start-up as NVlabs' `auto` config does (see
`alignjax.train.loop.resolve_config`).
"""
from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.resume = True                      # continue from the workdir's latest checkpoint when there is one

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
    c.stages = ()                        # multi-stage runs, e.g. configs/demo.py
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
