"""The benchmark's model zoo: one parent on procedural `faces`, three children fine-tuned from it (`toons`,
`animals`, `buildings`) and one grandchild (`animals_faces`: the animals child fine-tuned back towards faces,
for the forgotten-directions study). All 32x32, 64 channels, trained by this project's own `train.py`.

    cfg = zoo_config('toons')            # the training config of one zoo model (configs/zoo/toons.py wraps it)
    ck = load_zoo('toons')               # the shipped model, assets/zoo/toons (G, G_ema, D)
    card = zoo_card('toons')             # its JSON card: config, kimg, wall time, machine, FD_eval, P/R

`make zoo` trains every model in order (each resumable: re-running continues) and copies each final model
into assets/zoo/<name>; `alignjax-zoo cards` (or `python -m alignjax.eval.zoo cards`) recomputes the cards'
metrics.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
from pathlib import Path

import jax
import numpy as np
from PIL import Image, ImageDraw

from alignjax import vis
from alignjax.data import procedural as P
from alignjax.io.checkpoint import load_checkpoint
from alignjax.io.store import atomic_directory
from alignjax.train.config import small32_config

ROOT = Path(__file__).resolve().parents[2]
ZOO_DIR = ROOT / 'assets' / 'zoo'
DEMO_PARENT = ROOT / 'assets' / 'demo' / 'parent'


@dataclasses.dataclass(frozen=True)
class ZooModel:
    name: str
    domain: str  # the procedural domain it is trained on
    parent: str | None  # zoo name it is fine-tuned from (None: the root, continued from the demo parent)
    kimg: float  # images shown in this model's own run


ZOO = {
    m.name: m
    for m in (
        ZooModel('parent', 'faces', None, 25.0),
        ZooModel('toons', 'toons', 'parent', 4.0),
        ZooModel('animals', 'animals', 'parent', 4.0),
        ZooModel('buildings', 'buildings', 'parent', 40.0),  # distant: FD_eval 22.8, 20.6, 18.9 at 4, 8, 20 kimg
        ZooModel('animals_faces', 'faces', 'animals', 4.0),
    )
}
CHILDREN = ('toons', 'animals', 'buildings')


def zoo_path(name: str) -> Path:
    if name not in ZOO:
        raise KeyError(f'unknown zoo model {name!r}; the zoo has {sorted(ZOO)}')
    return ZOO_DIR / name


def zoo_config(name: str):
    """The training config of zoo model `name` (an ml_collections ConfigDict; preset 'zoo_<name>' of
    alignjax.configs)."""
    if name not in ZOO:
        raise KeyError(f'unknown zoo model {name!r}; the zoo has {sorted(ZOO)}')
    m = ZOO[name]
    c = small32_config(f'proc:{m.domain}?n=20000')  # the demo parent's architecture and hyperparameters
    c.name = f'zoo_{name}'
    c.train.kimg = m.kimg
    if m.parent is None:
        # The root continues the shipped demo parent (61.2 kimg, same architecture and hyperparameters). No EMA
        # ramp-up: it would count this run's images from zero and shorten G_ema's half-life from the demo parent's
        # 3 kimg to 1.25 kimg at 25 kimg (measured: that parent lost to the demo parent on FD_eval, 5.7 vs 5.2).
        c.finetune.init_from = str(DEMO_PARENT)
        c.train.ema_rampup = None
    else:
        # Children: every weight trained (as StyleAlign), ADA on, G/G_ema/D from the parent.
        c.finetune.init_from = str(zoo_path(m.parent))
        c.train.augment = 'ada'
        c.log.tick_kimg = 0.5
        c.log.snapshot_kimg = c.log.grid_kimg = 2.0
    return c


def load_zoo(name: str):
    """The shipped zoo model `name` as an alignjax Checkpoint."""
    p = zoo_path(name)
    if not p.exists():
        raise FileNotFoundError(f'{p} does not exist: the zoo model {name!r} has not been trained (make zoo)')
    return load_checkpoint(p)


def zoo_card(name: str) -> dict:
    return json.loads((zoo_path(name) / 'card.json').read_text())


# ----------------------------------------------------------------------------------------------------------
# Installing trained models into assets/zoo, their cards, the contact sheet.


def _wall_seconds(workdir: Path) -> float:
    """Training wall time of a run from its metrics.jsonl (sum over ticks of sec/kimg x kimg)."""
    rows = [json.loads(x) for x in (workdir / 'metrics.jsonl').read_text().splitlines() if x.strip()]
    total, prev = 0.0, 0.0
    for r in rows:
        total += r['sec_per_kimg'] * (r['kimg'] - prev)
        prev = r['kimg']
    return total


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f'{os.cpu_count()} CPU cores ({cpu}), {jax.default_backend()} backend, {platform.system()}'


def install(name: str, workdir) -> Path:
    """Copy workdir/final into assets/zoo/<name> (atomically) with a card: config, kimg, wall time, machine."""
    workdir = Path(workdir)
    final = workdir / 'final'
    if not (final / 'alignjax_config.json').exists():
        raise FileNotFoundError(f'{final} is not a finished model (run train.py with configs/zoo/{name}.py first)')
    meta = json.loads((final / 'alignjax_config.json').read_text())
    m = ZOO[name]
    kimg = float(meta['extra'].get('kimg', 0.0))
    base = zoo_card(m.parent)['kimg_total'] if m.parent else 61.2  # the demo parent's 61.2 kimg
    dst = zoo_path(name)
    card = dict(
        name=name,
        domain=m.domain,
        parent=m.parent or 'assets/demo/parent (61.2 kimg)',
        kimg=kimg,
        kimg_total=round(base + kimg, 3),
        wall_s=round(_wall_seconds(workdir), 1),
        machine=machine(),
        command=f'python train.py --config configs/zoo/{name}.py --workdir {workdir}',
        config=meta['extra'].get('config'),
    )
    if (dst / 'card.json').exists():  # keep the metrics of an earlier card
        card['metrics'] = json.loads((dst / 'card.json').read_text()).get('metrics')
    with atomic_directory(dst) as tmp:
        shutil.copytree(final, tmp)
        (tmp / 'card.json').write_text(json.dumps(card, indent=1))
    return dst


CARD_N = 5000


def contact_sheet(path, n: int = 8, seed: int = 7, psi: float = 0.7, scale: int = 3) -> Path:
    """Same z through every zoo model (one row each, labelled), upscaled `scale`x (nearest) to a PNG."""
    rows, labels = [], []
    gens = [('demo parent', load_checkpoint(DEMO_PARENT).generator())]
    gens += [(nm, load_zoo(nm).generator()) for nm in ZOO if zoo_path(nm).exists()]
    z = np.random.RandomState(seed).randn(n, gens[0][1].z_dim).astype(np.float32)
    for label, g in gens:
        img = vis.to_uint8(np.asarray(g.synthesis(g.mapping(z, truncation_psi=psi), noise_mode='const')))
        rows.append(vis.grid(img, cols=n, pad=2))
        labels.append(label)
    r = gens[0][1].resolution
    cell = r * scale
    lab_w = 110
    sheet = Image.new('RGB', (lab_w + n * (cell + 2 * scale), len(rows) * (cell + 2 * scale) + 20), 'white')
    d = ImageDraw.Draw(sheet)
    d.text((4, 4), f'same z per column (seed {seed}, psi {psi}); rows: models', fill='black')
    for i, (row, label) in enumerate(zip(rows, labels)):
        im = Image.fromarray(row).resize((row.shape[1] * scale, row.shape[0] * scale), Image.NEAREST)
        y = 20 + i * (cell + 2 * scale)
        sheet.paste(im, (lab_w, y))
        d.text((4, y + cell // 2 - 6), label, fill='black')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def markdown_table(cards: dict) -> str:
    head = (
        '| model | domain | kimg (total) | train wall | FD_eval own | '
        + ' | '.join(f'FD_eval {d}' for d in P.DOMAINS)
        + ' | KID_eval own | precision | recall |'
    )
    lines = [head, '|' + '---|' * (9 + len(P.DOMAINS) - 1)]
    for nm, c in cards.items():
        m = c.get('metrics') or {}
        own = c.get('domain', 'faces')
        fd = lambda d: f'{m[f"fd_eval_{d}"]:.1f}' if f'fd_eval_{d}' in m else 'n/a'
        kimg = f'{c["kimg"]:.1f} ({c["kimg_total"]:.1f})' if 'kimg' in c else '61.2 (61.2)'
        wall = f'{c["wall_s"] / 60:.0f} min' if 'wall_s' in c else '~33 min'
        lines.append(
            f'| {nm} | {own} | {kimg} | {wall} | {fd(own)} | '
            + ' | '.join(fd(d) for d in P.DOMAINS)
            + f' | {m.get("kid_eval", float("nan")):.4f} | {m.get("precision", float("nan")):.3f} | '
            f'{m.get("recall", float("nan")):.3f} |'
        )
    return '\n'.join(lines)


if __name__ == '__main__':  # `python -m alignjax.eval.zoo install|cards|tables|sheet` (alignjax/cli/zoo.py)
    from alignjax.cli.zoo import main

    raise SystemExit(main())
