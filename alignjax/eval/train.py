"""Train one domain evaluator on procedural renders (exact resume; held-out accuracy at the end).

    alignjax-train-evaluator --domain faces --res 32 --out assets/evaluators/faces_32
    python -m alignjax.eval.train --domain faces --res 32 --out assets/evaluators/faces_32    # the same

Training state (params, Adam, step) is checkpointed every `ckpt_every` (500) steps in OUT/_train/ (orbax); running
the same command again continues from there, bit-exactly (batches are pure functions of seed and step). When
done, OUT holds the evaluator (evaluator.json + params/) and accuracy.json (held-out scores, clean and
degraded), and OUT/_train/ is removed unless --keep-state.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from alignjax.data import procedural as P
from alignjax.eval import evaluator as E
from alignjax.eval.data import EVAL_SEED, TRAIN_SEED, RenderPool, degrade, render_set
from alignjax.eval.scores import score, summary_line

# Degradation levels of the accuracy report. The demo parent's samples are as sharp as renders blurred with
# sigma 0.5 px (mean |Laplacian| 12.8 vs 12.9, high-frequency power 3.0% vs 3.2%; clean renders: 18.3, 5.5%):
# 'gan' is that blur plus mild noise and JPEG. Measured by docs/benchmark.md's recipe.
DEGRADE_LEVELS = {
    'clean': {},
    'blur0.5': dict(blur=0.5),
    'blur1.0': dict(blur=1.0),
    'noise8': dict(noise=8.0),
    'jpeg50': dict(jpeg_quality=50),
    'gan': dict(blur=0.5, noise=2.0, jpeg_quality=90),
}


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    steps: int = 2000
    batch: int = 64
    lr: float = 2e-3
    warmup: int = 200
    weight_decay: float = 1e-4
    pool_size: int = 16384
    chunk: int = 1024
    refresh_every: int = 64  # a new chunk of 1024 renders every 64 steps (~1 new render per 4 images)
    blur_p: float = 0.5
    blur_max: float = 1.2  # sigma in px
    noise_p: float = 0.5
    noise_max: float = 0.08  # std in [-1, 1] units (~10/255)
    seed: int = TRAIN_SEED


def _optimizer(s: TrainSettings):
    warmup = min(s.warmup, max(s.steps // 10, 1))
    sched = optax.warmup_cosine_decay_schedule(0.0, s.lr, warmup, max(s.steps, warmup + 1), end_value=s.lr * 0.01)
    return optax.adamw(sched, weight_decay=s.weight_decay)


def _augment(key, x, s: TrainSettings):
    """Per-image random Gaussian blur and additive noise, in graph. x [N, R, R, 3] in [-1, 1]."""
    n = x.shape[0]
    kb, ks, kn, kv, kz = jax.random.split(key, 5)
    sigma = jnp.where(jax.random.uniform(kb, (n,)) < s.blur_p, jax.random.uniform(ks, (n,)) * s.blur_max, 0.0)
    r = 3
    t = jnp.arange(-r, r + 1, dtype=jnp.float32)
    k = jnp.exp(-0.5 * (t[None] / jnp.maximum(sigma[:, None], 1e-3)) ** 2)
    k = jnp.where(sigma[:, None] > 0.05, k, (t[None] == 0).astype(jnp.float32))
    k = k / k.sum(-1, keepdims=True)  # [N, 7]
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        xp = jnp.pad(x, pad, mode='edge')
        size = x.shape[axis]
        x = sum(k[:, j, None, None, None] * jax.lax.slice_in_dim(xp, j, j + size, axis=axis) for j in range(2 * r + 1))
    std = jnp.where(jax.random.uniform(kn, (n,)) < s.noise_p, jax.random.uniform(kv, (n,)) * s.noise_max, 0.0)
    x = x + std[:, None, None, None] * jax.random.normal(kz, x.shape)
    return jnp.clip(x, -1, 1)


def _targets(cfg: E.EvaluatorConfig, b):
    fac = b['factors']
    norm = (fac - E._LO) / (E._HI - E._LO) * 2 - 1
    hue = 2 * jnp.pi * fac[:, E.HUE]
    lm = (b['landmarks'] + 0.5) / cfg.resolution * 2 - 1
    return norm, jnp.stack([jnp.cos(hue), jnp.sin(hue)], -1), lm


def loss_fn(params, cfg: E.EvaluatorConfig, b, x):
    """Weighted sum of the heads' losses; returns (loss, per-head metrics)."""
    raw = E.EvaluatorNet(cfg).apply({'params': params}, x)
    norm, hue_cs, lm = _targets(cfg, b)
    keep = E.expressed_factors(cfg.domain).copy()
    keep[E.GLASSES] = keep[E.HUE] = False
    w = jnp.asarray(keep, jnp.float32)
    l_fac = jnp.sum(jnp.mean((raw['factors'][:, : len(E.FACTOR_NAMES)] - norm) ** 2, 0) * w) / w.sum()
    l_hue = jnp.mean((raw['factors'][:, -2:] - hue_cs) ** 2)
    if E.expressed_factors(cfg.domain)[E.GLASSES]:
        l_gl = jnp.mean(optax.sigmoid_binary_cross_entropy(raw['factors'][:, E.GLASSES], b['factors'][:, E.GLASSES]))
    else:
        l_gl = jnp.zeros(())
    vis = b['visible'].astype(jnp.float32)
    l_lm = jnp.sum(jnp.sum((raw['landmarks'] - lm) ** 2, -1) * vis) / jnp.maximum(vis.sum(), 1)
    l_vis = jnp.mean(optax.sigmoid_binary_cross_entropy(raw['visible'], vis))
    # one-hot cross-entropy: the integer-label form's scatter-add gradient is ~2x the whole step on XLA:CPU
    onehot = jax.nn.one_hot(b['mask'], cfg.num_classes, dtype=raw['mask_logits'].dtype)
    l_seg = -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(raw['mask_logits']), -1))
    loss = l_fac + 0.5 * l_hue + 0.5 * l_gl + 20.0 * l_lm + 0.2 * l_vis + l_seg
    return loss, dict(loss=loss, fac=l_fac, hue=l_hue, glasses=l_gl, lm=l_lm, vis=l_vis, seg=l_seg)


@functools.lru_cache(maxsize=8)
def make_step(cfg: E.EvaluatorConfig, s: TrainSettings):
    """(optax transform, jitted step); cached per (config, settings) so a resumed run reuses the compile."""
    tx = _optimizer(s)

    @jax.jit
    def step(params, opt_state, b, key):
        x = _augment(key, b['image'].astype(jnp.float32) * (2 / 255) - 1, s)
        (_, m), g = jax.value_and_grad(loss_fn, has_aux=True)(params, cfg, b, x)
        upd, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, upd), opt_state, m

    return tx, step


def train_evaluator(
    domain: str,
    resolution: int,
    out,
    settings: TrainSettings = TrainSettings(),
    *,
    width: int = 16,
    ckpt_every: int = 500,
    keep_state: bool = False,
    eval_n: int = 2000,
    quiet: bool = False,
    stop_after: int | None = None,
) -> dict | None:
    """Train (or continue training) the evaluator of `domain` at `resolution` into directory `out`.

    `stop_after`: leave after that step with a checkpoint (a time-boxed run; the same call continues it);
    returns None then. Otherwise returns the accuracy report written to out/accuracy.json."""
    import orbax.checkpoint as ocp  # slow to import (~1 s): only when training
    from tqdm import tqdm

    if domain not in P.DOMAINS:
        raise E.EvaluatorError(f'unknown domain {domain!r}; choose from {P.DOMAINS}')
    out = Path(out).absolute()
    cfg = E.EvaluatorConfig(domain, int(resolution), width=width)
    s = settings
    tx, step_fn = make_step(cfg, s)
    key = jax.random.key(s.seed)
    params = E._init(cfg, jax.random.fold_in(key, 0))
    opt_state = tx.init(params)
    state = dict(params=params, opt_state=opt_state, step=jnp.zeros((), jnp.int32))
    run_info = dict(config=cfg.to_dict(), settings=dataclasses.asdict(s))
    mgr = ocp.CheckpointManager(
        out / '_train',
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True, enable_async_checkpointing=False),
        item_names=('state', 'info'),
    )
    start = 0
    if mgr.latest_step() is not None:
        latest = mgr.latest_step()
        got = mgr.restore(
            latest, args=ocp.args.Composite(state=ocp.args.StandardRestore(state), info=ocp.args.JsonRestore())
        )
        if got['info'] != json.loads(json.dumps(run_info)):
            raise E.EvaluatorError(
                f'{out}/_train holds a run with other settings ({got["info"]}); use another --out or delete it'
            )
        state, start = got['state'], int(got['state']['step'])
        if not quiet:
            print(f'resumed from {out}/_train/{latest} (step {start})', flush=True)
    pool = RenderPool(
        domain,
        resolution,
        seed=s.seed,
        pool_size=s.pool_size,
        chunk=s.chunk,
        refresh_every=s.refresh_every,
        batch_size=s.batch,
    )
    t0 = time.time()
    params, opt_state = state['params'], state['opt_state']
    pbar = tqdm(
        total=s.steps,
        initial=start,
        desc=f'{domain}@{resolution}',
        unit='step',
        dynamic_ncols=True,
        disable=quiet,
        mininterval=2.0,
        file=sys.stdout,
    )
    pool.batch(start, progress=None if quiet else 'rendering the pool')
    m, done = None, start
    try:
        for i in range(start, s.steps):
            b = pool.batch(i)
            params, opt_state, m = step_fn(params, opt_state, b, jax.random.fold_in(key, i + 1))
            pbar.update(1)
            done = i + 1
            if (i + 1) % 50 == 0:
                m = {k: float(v) for k, v in m.items()}
                if not np.isfinite(m['loss']):
                    raise E.EvaluatorError(f'non-finite loss at step {i + 1}; last good checkpoint in {out}/_train')
                pbar.set_postfix(loss=f'{m["loss"]:.4f}', lm=f'{m["lm"]:.4f}', seg=f'{m["seg"]:.3f}', refresh=False)
            last = i + 1 == s.steps or (stop_after is not None and i + 1 >= stop_after)
            if (i + 1) % ckpt_every == 0 or last:
                st = dict(params=params, opt_state=opt_state, step=jnp.asarray(i + 1, jnp.int32))
                mgr.save(
                    i + 1,
                    args=ocp.args.Composite(state=ocp.args.StandardSave(st), info=ocp.args.JsonSave(run_info)),
                    force=True,
                )
                mgr.wait_until_finished()
            if last:
                break
    finally:
        pbar.close()
        pool.close()
    train_s = time.time() - t0
    if done < s.steps:
        mgr.close()
        return None
    ev = E.Evaluator(cfg, jax.tree_util.tree_map(np.asarray, params))
    ev.save(out)
    acc = accuracy_report(ev, n=eval_n)
    acc['train'] = dict(
        steps=s.steps,
        images_seen=s.steps * s.batch,
        unique_renders=(s.pool_size + (s.steps // s.refresh_every) * s.chunk),
        wall_s_this_run=round(train_s, 1),
        train_seed=s.seed,
        eval_seed=EVAL_SEED,
        settings=dataclasses.asdict(s),
    )
    (out / 'accuracy.json').write_text(json.dumps(acc, indent=1))
    mgr.close()
    if not keep_state:
        shutil.rmtree(out / '_train', ignore_errors=True)
    if not quiet:
        print(f'{domain}@{resolution}: {summary_line(acc["clean"])}')
        print(f'  degraded (gan level): {summary_line(acc["gan"])}')
        print(f'wrote {out} (evaluator.json, params/, accuracy.json) in {train_s / 60:.1f} min')
    return acc


def accuracy_report(ev, n: int = 2000, levels=None) -> dict:
    """Held-out scores of `ev` at every degradation level (renders of EVAL_SEED indices 0..n-1, rendered once)."""
    data = render_set(ev.domain, ev.resolution, EVAL_SEED, 0, n)
    out = {}
    for name, lv in (levels or DEGRADE_LEVELS).items():
        res = score(ev, data, degrade(data['image'], seed=EVAL_SEED, **lv) if lv else None)
        out[name] = dict(res, degrade=dict(lv), seed=EVAL_SEED, start=0)
    return out


def rescore(path, n: int = 2000) -> dict:
    """Recompute a trained evaluator's accuracy.json at the current DEGRADE_LEVELS (keeps its 'train' record)."""
    path = Path(path)
    ev = E.load_evaluator(path)
    old = json.loads((path / 'accuracy.json').read_text()) if (path / 'accuracy.json').exists() else {}
    acc = accuracy_report(ev, n=n)
    if 'train' in old:
        acc['train'] = old['train']
    (path / 'accuracy.json').write_text(json.dumps(acc, indent=1))
    return acc


if __name__ == '__main__':  # `python -m alignjax.eval.train` (the command line: alignjax.cli.eval_train)
    from alignjax.cli.eval_train import main

    raise SystemExit(main())
