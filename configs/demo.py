"""The demo (`make demo`): a parent on procedural `faces`, a child fine-tuned from it on `toons`, then the
same z through both, a translation grid and a morph, at 32x32 with 64 channels.

By default the parent is the shipped checkpoint assets/demo/parent (made by configs/demo_parent.py, see the
README) and only the child is trained here: about 4 kimg, a few minutes on 2 CPU cores.
`--config.from_scratch=True` trains the parent too (the same config as demo_parent.py; ~1 hour on 2 cores).
Writes runs/demo/: child/ (checkpoints, samples, metrics, final), compare.png, translate/, morph.gif.
"""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _parent_config():
    spec = importlib.util.spec_from_file_location('demo_parent', Path(__file__).with_name('demo_parent.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config()


def get_config():
    c = _parent_config()
    c.name = 'demo'
    c.from_scratch = False
    c.demo_outputs = True
    c.train.kimg = 60.0
    c.log.snapshot_kimg = 2.0
    c.log.grid_kimg = 2.0
    c.stages = (
        dict(name='parent', pretrained=str(ROOT / 'assets' / 'demo' / 'parent'), overrides={}),
        dict(name='child', overrides={'data.spec': 'proc:toons?n=2000', 'finetune.init_from': '{parent}',
                                      'finetune.freeze_mapping': True, 'train.augment': 'ada',
                                      'train.kimg': 4.0, 'log.tick_kimg': 0.5}),
    )
    return c
