"""NVlabs 'stylegan2' (config F): batch 32, gamma 10, 8 mapping layers, full width."""
from alignjax.train.config import base_config, nvlabs_preset


def get_config():
    c = nvlabs_preset(base_config(), batch=32, mbstd=4, fmaps=1, lrate=0.002, gamma=10, ema=10, ramp=None,
                      mapping=8)
    c.data.resolution = 1024
    return c
