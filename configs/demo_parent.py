"""The demo's parent, trained longer: procedural `faces` at 32x32, 64 channels. This made the shipped
checkpoint in assets/demo/ (see README for the exact command and its wall time)."""
from alignjax.train.config import base_config


def get_config():
    c = base_config()
    c.name = 'demo_parent'
    c.data.spec = 'proc:faces?n=20000'
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
    c.train.kimg = 200.0                 # the shipped checkpoint stopped earlier: see README
    c.log.tick_kimg = 1.0
    c.log.snapshot_kimg = 5.0
    c.log.grid_kimg = 5.0
    return c
