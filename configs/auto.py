"""NVlabs 'auto': 2 mapping layers; batch, mbstd, width, lr, gamma (0.0002 res^2 / batch) and ema from the
resolution and device count at start-up (the -1 fields), ema ramp-up 0.05. Set data.resolution to your data's."""
from alignjax.train.config import base_config, nvlabs_preset


def get_config():
    c = nvlabs_preset(base_config(), batch=-1, mbstd=-1, fmaps=-1, lrate=-1, gamma=-1, ema=-1, ramp=0.05,
                      mapping=2)
    c.train.d_lr = -1
    c.data.resolution = 256
    return c
