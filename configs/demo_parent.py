"""The demo's parent, trained longer: procedural `faces` at 32x32, 64 channels. This made the shipped
checkpoint in assets/demo/ (see README for the exact command and its wall time)."""
from alignjax.train.config import small32_config


def get_config():
    c = small32_config('proc:faces?n=20000')
    c.name = 'demo_parent'
    c.train.kimg = 200.0                 # the shipped checkpoint stopped earlier: see README
    return c
