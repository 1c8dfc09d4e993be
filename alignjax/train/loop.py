"""The training loop: data, models (fresh or fine-tuned from any checkpoint), the jitted data-parallel step,
orbax checkpoints with exact resume, progress, metrics, sample grids and the final export.

    summary = train(config, workdir)        # one run
    run(config, workdir)                    # a run, or every stage of config.stages (e.g. parent -> child)

Layout of a workdir:
    checkpoints/<step>/   orbax CheckpointManager: train state, data-iterator state, metadata (keep K)
    samples/grid_<kimg>.png   G_ema on fixed latents
    metrics.jsonl         one line per tick
    final/                the final G, G_ema and D (load with `alignjax.load_checkpoint`)
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from alignjax import vis
from alignjax.model import Checkpoint, Generator, load_checkpoint, new_discriminator, new_generator
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig, Impl
from alignjax.train import step as S


class TrainingDiverged(RuntimeError):
    """A loss became NaN/Inf; the last good checkpoint is kept."""


def log(msg: str):
    if jax.process_index() == 0:
        print(msg, flush=True)


# ----------------------------------------------------------------------------------------------------------
# Config resolution (NVlabs train.py semantics for 'auto' values, written as -1).

def resolve_config(config, resolution: int, num_devices: int):
    """Fill the -1 ('auto') fields as NVlabs' `auto` config does; returns a new, resolved config."""
    cfg = config.copy_and_resolve_references() if hasattr(config, 'copy_and_resolve_references') else config
    t, m = cfg.train, cfg.model
    if t.batch == -1:
        t.batch = max(min(num_devices * min(4096 // resolution, 32), 64), num_devices)
    if m.mbstd_group_size == -1:
        m.mbstd_group_size = min(t.batch // num_devices, 4)
    if m.channel_base == -1:
        m.channel_base = int((1 if resolution >= 512 else 0.5) * 32768)
    if t.g_lr == -1:
        t.g_lr = 0.002 if resolution >= 1024 else 0.0025
    if t.d_lr == -1:
        t.d_lr = t.g_lr
    if t.r1_gamma == -1:
        t.r1_gamma = 0.0002 * resolution ** 2 / t.batch
    if t.ema_kimg == -1:
        t.ema_kimg = t.batch * 10 / 32
    return cfg


def hparams_from_config(config) -> S.TrainHParams:
    t, f = config.train, config.finetune
    freeze_g = list(f.freeze_g_regex or [])
    if f.freeze_mapping:
        freeze_g.append(r'^mapping/')
    return S.TrainHParams(
        batch=int(t.batch), g_lr=float(t.g_lr), d_lr=float(t.d_lr), betas=tuple(t.betas), eps=float(t.eps),
        r1_gamma=float(t.r1_gamma), r1_interval=int(t.r1_interval), pl_weight=float(t.pl_weight),
        pl_interval=int(t.pl_interval), pl_batch_shrink=int(t.pl_batch_shrink), pl_decay=float(t.pl_decay),
        style_mixing=float(t.style_mixing), ema_kimg=float(t.ema_kimg),
        ema_rampup=None if t.ema_rampup is None else float(t.ema_rampup), augment=t.augment,
        ada_spec=t.ada_spec, ada_target=float(t.ada_target), ada_interval=int(t.ada_interval),
        ada_kimg=float(t.ada_kimg), diffaugment_policy=t.diffaugment_policy, freeze_g=tuple(freeze_g),
        freeze_d=tuple(f.freeze_d_regex or []))


def freeze_d_patterns(d_cfg: DiscriminatorConfig, k: int) -> list[str]:
    """FreezeD: the first k discriminator blocks, from the image side."""
    return [rf'^b{r}/' for r in d_cfg.block_resolutions[:k]]


def _impl(config) -> Impl:
    return Impl(**{k: config.model.impl[k] for k in ('modconv', 'upconv', 'fir', 'downconv', 'dtype')})


def build_models(config, resolution: int, c_dim: int, key):
    """(g_cfg, d_cfg, G vars, G_ema vars, D vars, notes, ada_p), fresh or from config.finetune.init_from."""
    m = config.model
    notes: list[str] = []
    impl = _impl(config)
    k_g, k_d = jax.random.split(key)
    src = config.finetune.init_from
    if src:
        ck = load_checkpoint(src)
        notes += [f'{src}: {n}' for n in ck.notes]
        g_cfg = ck.g_config.replace(impl=impl)
        if g_cfg.resolution != resolution:
            raise ValueError(f'{src} is a {g_cfg.resolution}x{g_cfg.resolution} model but the data is '
                             f'{resolution}x{resolution}; set --config.data.resolution={g_cfg.resolution}')
        if g_cfg.c_dim != c_dim:
            raise ValueError(f'{src} has c_dim={g_cfg.c_dim} but the dataset has {c_dim} label dims')
        g_ema = ck.nets.get('G_ema') or ck.nets.get('G')
        g = ck.nets.get('G') or g_ema
        if 'G' not in ck.nets:
            notes.append(f'{src} has no training copy G: starting G from G_ema')
        if 'D' in ck.nets and ck.d_config is not None:
            d_cfg = ck.d_config.replace(impl=impl, mbstd_group_size=ck.d_config.mbstd_group_size)
            d = ck.nets['D']
        else:
            d_cfg = DiscriminatorConfig(resolution=resolution, img_channels=g_cfg.img_channels, c_dim=c_dim,
                                        channel_base=g_cfg.channel_base, channel_max=g_cfg.channel_max,
                                        mbstd_group_size=m.mbstd_group_size,
                                        mbstd_num_channels=m.mbstd_num_channels, conv_clamp=m.conv_clamp,
                                        impl=impl)
            d = new_discriminator(k_d, config=d_cfg).variables
            notes.append(f'{src} has no discriminator: D starts from a fresh random initialisation')
        ada_p = float(ck.extra.get('augment_p', 0.0) or 0.0)
        return g_cfg, d_cfg, g, g_ema, d, notes, ada_p
    g_cfg = GeneratorConfig(resolution=resolution, z_dim=m.z_dim, w_dim=m.w_dim, c_dim=c_dim,
                            mapping_layers=m.mapping_layers, mapping_lr_mul=m.mapping_lr_mul,
                            channel_base=m.channel_base, channel_max=m.channel_max, conv_clamp=m.conv_clamp,
                            impl=impl)
    d_cfg = DiscriminatorConfig(resolution=resolution, c_dim=c_dim, channel_base=m.channel_base,
                                channel_max=m.channel_max, mbstd_group_size=m.mbstd_group_size,
                                mbstd_num_channels=m.mbstd_num_channels, conv_clamp=m.conv_clamp, impl=impl)
    g = new_generator(k_g, config=g_cfg).variables
    d = new_discriminator(k_d, config=d_cfg).variables
    return g_cfg, d_cfg, g, g, d, notes, 0.0


# ----------------------------------------------------------------------------------------------------------
# Checkpointing.

def _manager(workdir: Path, keep: int):
    import orbax.checkpoint as ocp
    opts = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(workdir / 'checkpoints', options=opts,
                                 item_names=('state', 'data', 'meta'))


def _save(mgr, state: S.TrainState, data_state: bytes, meta: dict):
    import orbax.checkpoint as ocp
    step = int(state.step)
    mgr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                           data=ocp.args.JsonSave({'iterator': data_state.decode()}),
                                           meta=ocp.args.JsonSave(meta)), force=True)
    mgr.wait_until_finished()


def _restore(mgr, step: int, abstract_state):
    import orbax.checkpoint as ocp
    out = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                                    data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()))
    return out['state'], out['data']['iterator'].encode(), out['meta']


def _final_checkpoint(state: S.TrainState, g_cfg, d_cfg, meta) -> Checkpoint:
    host = lambda t: jax.tree_util.tree_map(np.asarray, jax.device_get(t))
    nets = {'G': host(state.g), 'G_ema': host(state.g_ema), 'D': host(state.d)}
    return Checkpoint(g_cfg, d_cfg, nets, source='alignjax train', format='orbax',
                      notes=[], extra={'augment_p': float(state.ada.p), 'kimg': int(state.nimg) / 1000,
                                       'config': meta.get('config')})


# ----------------------------------------------------------------------------------------------------------
# The run.

def _grid_latents(config, g_cfg: GeneratorConfig, ds):
    n = int(config.log.grid_size)
    z = np.random.RandomState(int(config.log.grid_seed)).randn(n, g_cfg.z_dim).astype(np.float32)
    c = None
    if g_cfg.c_dim:
        c = np.stack([ds[i % len(ds)]['label'] for i in range(n)]).astype(np.float32)
    return z, c


def _save_grid(path, gen: Generator, z, c, cols):
    img = np.asarray(gen.synthesis(gen.mapping(z, c), noise_mode='const'))
    vis.save_png(path, vis.grid(vis.to_uint8(img), cols=cols))


def train(config, workdir) -> dict:
    """Train (or fine-tune) one model as `config` says, in `workdir`. Returns a summary dict."""
    from alignjax.data import make_dataset, make_loader
    workdir = Path(workdir).absolute()              # orbax wants absolute paths
    workdir.mkdir(parents=True, exist_ok=True)
    res = int(config.data.resolution)
    config = resolve_config(config, res, jax.device_count())
    ds = make_dataset(config.data.spec, res, xflip=bool(config.data.xflip),
                      bad_file_policy=config.data.bad_file_policy, in_memory=config.data.in_memory,
                      max_images=config.data.max_images)
    key = jax.random.key(int(config.seed))
    k_model, k_train = jax.random.split(key)
    g_cfg, d_cfg, g_vars, g_ema_vars, d_vars, notes, ada_p = build_models(config, res, ds.c_dim, k_model)
    if config.finetune.freeze_d:
        config.finetune.freeze_d_regex = tuple(config.finetune.freeze_d_regex or ()) + tuple(freeze_d_patterns(
            d_cfg, int(config.finetune.freeze_d)))
    for n in notes:
        log(f'note: {n}')
    hp = hparams_from_config(config)
    if hp.batch % jax.process_count():
        raise ValueError(f'global batch {hp.batch} must be divisible by the host count {jax.process_count()}')
    local_batch = hp.batch // jax.process_count()
    fns = S.StepFns(g_cfg, d_cfg, hp)
    g_tx, d_tx = fns.optimizers(g_vars['params'], d_vars['params'])
    state = fns.place(S.init_state(k_train, g_vars, d_vars, g_ema_vars, g_tx, d_tx,
                                   ada_p=ada_p if config.train.augment == 'ada' else 0.0))
    loader = make_loader(ds, batch_size=local_batch, seed=int(config.seed),
                         worker_count=int(config.data.workers))
    meta = {'config': json.loads(config.to_json_best_effort()), 'g_config': g_cfg.to_dict(),
            'd_config': d_cfg.to_dict(), 'dataset': ds.name, 'resolution': res}

    mgr = _manager(workdir, int(config.log.keep))
    latest = mgr.latest_step()
    if latest is not None and config.resume:
        abstract = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=fns.replicated), state)
        state, data_state, _ = _restore(mgr, latest, abstract)
        loader.set_state(data_state)
        log(f'resumed from {workdir}/checkpoints/{latest} (kimg {int(state.nimg) / 1000:.1f})')
    elif latest is not None:
        raise FileExistsError(f'{workdir} already has checkpoints (latest step {latest}); pass --resume or use '
                              f'another workdir')

    total_img = int(round(float(config.train.kimg) * 1000))
    tick_img = max(int(float(config.log.tick_kimg) * 1000), 1)
    snap_img = max(int(float(config.log.snapshot_kimg) * 1000), 1)
    grid_img = max(int(float(config.log.grid_kimg) * 1000), 1)
    kill_at = int(config.debug.kill_at_step) if config.debug.kill_at_step else None
    grid_z, grid_c = _grid_latents(config, g_cfg, ds)
    cols = int(config.log.grid_cols)
    (workdir / 'samples').mkdir(exist_ok=True)
    metrics_path = workdir / 'metrics.jsonl'

    # Host-side counters: the loop never reads the device state back per step, so steps are dispatched ahead.
    # Metrics stay on the device and are fetched (and checked for NaN/Inf) at each tick, grid and snapshot --
    # always before a save, so a checkpoint never holds a diverged state.
    nimg, host_step = int(state.nimg), int(state.step)
    last_tick, last_snap, last_grid = nimg // tick_img, nimg // snap_img, nimg // grid_img
    if nimg == 0:
        _save_grid(workdir / 'samples' / 'grid_init.png', Generator(g_cfg, state.g_ema), grid_z, grid_c, cols)
    pbar = _progress(total_img, nimg)
    t_tick, img_tick, acc, pending = time.time(), nimg, {}, []
    first_step_time = None
    stop = {'flag': False}
    prev_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))

    def flush():
        """Fetch pending metrics; raise on non-finite values (nothing is saved after them)."""
        for i, m in enumerate(jax.device_get(pending)):
            m = {k: float(v) for k, v in m.items()}
            bad = [k for k, v in m.items() if not math.isfinite(v)]
            if bad:
                step_bad = host_step - len(pending) + i + 1
                raise TrainingDiverged(f'non-finite {bad} at step {step_bad}; stopped without saving. Last good '
                                       f'checkpoint: step {mgr.latest_step()} in {workdir}/checkpoints')
            for k, v in m.items():
                acc.setdefault(k, []).append(v)
            pbar.set_postfix(G=f"{m['loss_G']:.3f}", D=f"{m['loss_D']:.3f}", p=f"{m['ada_p']:.3f}",
                             refresh=False)
        pending.clear()

    try:
        while nimg < total_img and not stop['flag']:
            batch = next(loader)
            t0 = time.time()
            images, labels = fns.shard_batch((batch['image'], batch['label']))
            state, metrics = fns.step(state, images, labels, host_step)
            pending.append(metrics)
            host_step += 1
            nimg += hp.batch
            if first_step_time is None:
                jax.block_until_ready(state)
                first_step_time = time.time() - t0
            pbar.update(hp.batch)
            done = nimg >= total_img
            tick, grid, snap = nimg // tick_img > last_tick, nimg // grid_img > last_grid, nimg // snap_img > last_snap
            if tick or grid or snap or done:
                flush()
            if tick or done:
                last_tick = nimg // tick_img
                dt = time.time() - t_tick
                rec = dict(kimg=nimg / 1000, step=host_step, sec_per_kimg=dt / max((nimg - img_tick) / 1000, 1e-9),
                           img_per_s=(nimg - img_tick) / max(dt, 1e-9),
                           **{k: float(np.mean(v)) for k, v in acc.items()})
                if jax.process_index() == 0:
                    with open(metrics_path, 'a') as f:
                        f.write(json.dumps(rec) + '\n')
                t_tick, img_tick, acc = time.time(), nimg, {}
            if grid or done:
                last_grid = nimg // grid_img
                if jax.process_index() == 0:
                    _save_grid(workdir / 'samples' / f'grid_{nimg // 1000:06d}kimg.png',
                               Generator(g_cfg, state.g_ema), grid_z, grid_c, cols)
            if snap or done:
                last_snap = nimg // snap_img
                _save(mgr, state, loader.get_state(), meta)
                if kill_at is not None and host_step >= kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)  # crash-recovery tests: die right after a save
        flush()
    finally:
        pbar.close()
        signal.signal(signal.SIGTERM, prev_handler)
    if stop['flag']:
        _save(mgr, state, loader.get_state(), meta)
        log(f'stopped by SIGTERM at kimg {nimg / 1000:.2f}; checkpoint saved')
    final = _final_checkpoint(state, g_cfg, d_cfg, meta)
    if jax.process_index() == 0:
        final.save(workdir / 'final')
    log(f'done: {nimg / 1000:.2f} kimg; final model in {workdir}/final')
    return dict(kimg=nimg / 1000, step=int(state.step), workdir=str(workdir), final=str(workdir / 'final'),
                first_step_s=first_step_time, state=state, g_config=g_cfg, d_config=d_cfg)


def _progress(total, initial):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit='img', unit_scale=True, dynamic_ncols=True,
                disable=jax.process_index() != 0, mininterval=2.0, file=sys.stdout)


# ----------------------------------------------------------------------------------------------------------
# Multi-stage runs (e.g. the demo: parent on faces, then a child fine-tuned from it).

def _set_path(config, dotted: str, value):
    *parents, last = dotted.split('.')
    node = config
    for p in parents:
        node = node[p]
    node[last] = value


def run(config, workdir) -> dict:
    """Run `config`; if it has `stages`, run each in workdir/<stage name> in order, then write a side-by-side
    grid (same z through every stage). Stage dicts: name, overrides {dotted key: value} (string values may
    name earlier stages' final checkpoints as '{stage_name}'), and optionally pretrained: a checkpoint used
    as that stage's result instead of training it, unless config.from_scratch is set or it is missing."""
    workdir = Path(workdir)
    stages = list(config.get('stages') or [])
    if not stages:
        return {'main': train(config, workdir)}
    results, finals = {}, {}
    for st in stages:
        name = st['name']
        pre = st.get('pretrained')
        if pre and not config.get('from_scratch', False):
            if Path(pre).exists():
                finals[name] = str(pre)
                log(f'=== stage {name}: using the pretrained checkpoint {pre} (--config.from_scratch=True trains it)')
                continue
            log(f'=== stage {name}: pretrained checkpoint {pre} not found; training it')
        cfg = config.copy_and_resolve_references()
        with cfg.unlocked():
            cfg.stages = ()
            for k, v in st.get('overrides', {}).items():
                if isinstance(v, str):
                    v = v.format(**finals)
                _set_path(cfg, k, v)
        log(f'=== stage {name}: {cfg.data.spec} -> {workdir / name}')
        results[name] = train(cfg, workdir / name)
        finals[name] = str(workdir / name / 'final')
    compare_stages(config, workdir, finals)
    if config.get('demo_outputs') and len(finals) >= 2 and jax.process_index() == 0:
        from alignjax.apps.demo import demo_outputs
        names = list(finals)
        demo_outputs(finals[names[0]], finals[names[1]], workdir, child_label=names[1])
    results['finals'] = finals
    return results


def compare_stages(config, workdir: Path, finals: dict[str, str], n: int | None = None):
    """Same z through every stage's final G_ema: one row per stage, written to workdir/compare.png."""
    names = list(finals)
    gens = [load_checkpoint(finals[nm]).generator() for nm in names]
    n = n or int(config.log.grid_cols)
    z = np.random.RandomState(int(config.log.grid_seed) + 1).randn(n, gens[0].z_dim).astype(np.float32)
    rows = []
    for g in gens:
        ws = g.mapping(z, truncation_psi=float(config.log.compare_psi))
        rows.append(vis.to_uint8(np.asarray(g.synthesis(ws))))
    path = vis.save_png(Path(workdir) / 'compare.png', vis.grid(np.concatenate(rows), cols=n, pad=2))
    log(f'wrote {path}: rows = {", ".join(names)} (same z per column)')
    return path
