"""NVlabs 'paper512': batch 64, mbstd 8, full width, lr 0.0025, gamma 0.5, ema 20."""
from alignjax.train.config import base_config, nvlabs_preset


def get_config():
    c = nvlabs_preset(base_config(), batch=64, mbstd=8, fmaps=1, lrate=0.0025, gamma=0.5, ema=20, ramp=None,
                      mapping=8)
    c.data.resolution = 512
    return c
