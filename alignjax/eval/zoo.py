"""The benchmark's model zoo: one parent on procedural `faces`, three children fine-tuned from it (`toons`,
`animals`, `buildings`) and one grandchild (`animals_faces`: the animals child fine-tuned back towards faces,
for the forgotten-directions study). All 32x32, 64 channels, trained by this project's own `train.py`.

    cfg = zoo_config('toons')            # the training config of one zoo model (configs/zoo/toons.py wraps it)
    ck = load_zoo('toons')               # the shipped model, assets/zoo/toons (G, G_ema, D)
    card = zoo_card('toons')             # its JSON card: config, kimg, wall time, machine, FD_eval, P/R

`make zoo` trains every model in order (each resumable: re-running continues) and copies each final model
into assets/zoo/<name>; `python -m alignjax.eval.zoo cards` recomputes the cards' metrics.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ZOO_DIR = ROOT / 'assets' / 'zoo'
DEMO_PARENT = ROOT / 'assets' / 'demo' / 'parent'


@dataclasses.dataclass(frozen=True)
class ZooModel:
    name: str
    domain: str           # the procedural domain it is trained on
    parent: str | None    # zoo name it is fine-tuned from (None: the root, continued from the demo parent)
    kimg: float           # images shown in this model's own run


ZOO = {m.name: m for m in (
    ZooModel('parent', 'faces', None, 40.0),
    ZooModel('toons', 'toons', 'parent', 6.0),
    ZooModel('animals', 'animals', 'parent', 6.0),
    ZooModel('buildings', 'buildings', 'parent', 6.0),
    ZooModel('animals_faces', 'faces', 'animals', 6.0),
)}
CHILDREN = ('toons', 'animals', 'buildings')


def zoo_path(name: str) -> Path:
    if name not in ZOO:
        raise KeyError(f'unknown zoo model {name!r}; the zoo has {sorted(ZOO)}')
    return ZOO_DIR / name


def zoo_config(name: str):
    """The training config of zoo model `name` (an ml_collections ConfigDict)."""
    from alignjax.train.config import base_config
    m = ZOO[name] if name in ZOO else None
    if m is None:
        raise KeyError(f'unknown zoo model {name!r}; the zoo has {sorted(ZOO)}')
    c = base_config()
    c.name = f'zoo_{name}'
    c.data.spec = f'proc:{m.domain}?n=20000'
    c.data.resolution = 32
    c.data.xflip = True
    c.model.z_dim = c.model.w_dim = 128
    c.model.mapping_layers = 4
    c.model.channel_base = 2048          # 64 channels at every resolution up to 32x32 (as the demo parent)
    c.model.channel_max = 64
    c.model.mbstd_group_size = 4
    c.train.batch = 16
    c.train.g_lr = c.train.d_lr = 0.0025
    c.train.r1_gamma = 0.0002 * 32 ** 2 / 16          # NVlabs 'auto' gamma for this resolution and batch
    c.train.ema_kimg = 16 * 10 / 32
    c.train.ema_rampup = 0.05
    c.train.kimg = m.kimg
    c.log.tick_kimg = 1.0
    c.log.snapshot_kimg = 2.0
    c.log.grid_kimg = 2.0
    if m.parent is None:
        # The root continues the shipped demo parent (61.2 kimg, same architecture and hyperparameters).
        c.finetune.init_from = str(DEMO_PARENT)
        c.log.snapshot_kimg = 5.0
        c.log.grid_kimg = 5.0
    else:
        # Children: every weight trained (as StyleAlign), ADA on, G/G_ema/D from the parent.
        c.finetune.init_from = str(zoo_path(m.parent))
        c.train.augment = 'ada'
        c.log.tick_kimg = 0.5
    return c


def load_zoo(name: str):
    """The shipped zoo model `name` as an alignjax Checkpoint."""
    from alignjax.model import load_checkpoint
    p = zoo_path(name)
    if not p.exists():
        raise FileNotFoundError(f'{p} does not exist: the zoo model {name!r} has not been trained '
                                f'(make zoo)')
    return load_checkpoint(p)


def zoo_card(name: str) -> dict:
    return json.loads((zoo_path(name) / 'card.json').read_text())
