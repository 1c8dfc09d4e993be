"""NVlabs 'paper256' (ADA paper, 256x256): batch 64, mbstd 8, half width, lr 0.0025, gamma 1, ema 20."""
from alignjax.train.config import base_config, nvlabs_preset


def get_config():
    c = nvlabs_preset(base_config(), batch=64, mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1, ema=20, ramp=None,
                      mapping=8)
    c.data.resolution = 256
    return c
