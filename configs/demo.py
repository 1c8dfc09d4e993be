"""The demo: a parent on procedural `faces`, then a child fine-tuned from it on `toons`, at 32x32 with reduced
widths, sized for about 10 minutes on 2 CPU cores. Writes runs/demo/{parent,child}/ and runs/demo/compare.png
(the same z through parent and child, one row each)."""
from alignjax.train.config import base_config


def get_config():
    c = base_config()
    c.name = 'demo'
    c.data.spec = 'proc:faces?n=20000'
    c.data.resolution = 32
    c.data.xflip = True
    c.model.z_dim = c.model.w_dim = 128
    c.model.mapping_layers = 2
    c.model.channel_base = 4096
    c.model.channel_max = 128
    c.model.mbstd_group_size = 4
    c.train.batch = 16
    c.train.g_lr = c.train.d_lr = 0.0025
    c.train.r1_gamma = 0.0002 * 32 ** 2 / 16          # NVlabs 'auto' gamma for this resolution and batch
    c.train.ema_kimg = 16 * 10 / 32
    c.train.ema_rampup = 0.05
    c.train.kimg = 60.0
    c.log.tick_kimg = 2
    c.log.snapshot_kimg = 10
    c.log.grid_kimg = 10
    c.log.grid_size = 32
    c.stages = (
        dict(name='parent', overrides={}),
        dict(name='child', overrides={'data.spec': 'proc:toons?n=2000', 'finetune.init_from': '{parent}/final',
                                      'train.kimg': 20.0, 'train.augment': 'ada', 'finetune.freeze_mapping': True}),
    )
    return c
