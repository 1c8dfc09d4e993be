"""The shipped demo parent: loads, and real photos (read from ../shared/realdata, never copied) invert in it
and translate through a child end to end (quality is not the point at 32x32)."""

import importlib.util
from pathlib import Path

import numpy as np
from conftest import REALDATA, require_files

import alignjax as aj

ROOT = Path(__file__).resolve().parents[1]
PARENT = ROOT / 'assets' / 'demo' / 'parent'


def test_demo_config_uses_shipped_parent():
    spec = importlib.util.spec_from_file_location('demo_cfg', ROOT / 'configs' / 'demo.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.get_config()
    assert Path(cfg.stages[0]['pretrained']) == PARENT and PARENT.is_dir()
    ck = aj.load_checkpoint(PARENT)
    assert set(ck.nets) == {'G', 'G_ema', 'D'} and ck.g_config.resolution == cfg.data.resolution == 32


def test_real_photos_through_demo_parent():
    from alignjax.apps.translation import translate
    from alignjax.invert import InvertConfig
    from alignjax.invert.images import load_images

    files = require_files(REALDATA / 'celebamask_hq_samples', n=2)[:2]
    files += require_files(REALDATA / 'stargan_v2_celebahq_afhq' / 'afhq' / 'src' / 'cat')[:1]
    parent = aj.load_checkpoint(PARENT).generator()
    names, images = load_images([str(f) for f in files], parent.resolution)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    child = parent.with_variables(parent.variables)  # any aligned child works for the plumbing
    tr = translate(parent, {'child': child}, images, config=InvertConfig.stylealign(steps=10))
    assert np.all(np.isfinite(tr.inversion.psnr))
    assert tr.outputs['child'].shape == (3, 32, 32, 3)
