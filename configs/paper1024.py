"""NVlabs 'paper1024': batch 32, mbstd 4, full width, lr 0.002, gamma 2, ema 10."""
from alignjax.train.config import base_config, nvlabs_preset


def get_config():
    c = nvlabs_preset(base_config(), batch=32, mbstd=4, fmaps=1, lrate=0.002, gamma=2, ema=10, ramp=None,
                      mapping=8)
    c.data.resolution = 1024
    return c
