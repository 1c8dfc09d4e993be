"""Batched, jit-compiled GAN inversion (projection) into Z, W or W+, optionally with per-image noise maps.

The optimisation is NVlabs `projector.py`'s, run for a whole batch at once: each image has its own latent,
noise maps, Adam moments, latent-noise draws (keyed by the image's id, not its position in the batch) and
stopping state. The loss is a sum of per-image terms and Adam is elementwise, so inverting a batch gives each
image the result it gets alone (up to float rounding of batched convolutions).

Schedule (t = step / steps):  lr = lr0 * rampup(t) * cosine_rampdown(t) (ramp-up over the first 5%, cosine
ramp-down over the last 25%); the latent is perturbed by N(0, (std * 0.05 * max(0, 1 - t / 0.75)^2)^2)
(std = NVlabs' w_std, the RMS distance of mapped samples from their mean; 1 in Z as StyleAlign); noise maps
are regularised (weight 1e5: squared autocorrelation at 1-px shifts over a 2x pyramid down to 8 px) and
renormalised to zero mean / unit variance after every step. W / W+ start at the mean of 10,000 mapped z
(seed 123); Z starts at z = 0 (StyleAlign `projector_z.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from alignjax.errors import InputError
from alignjax.invert.losses import make_loss, psnr

SPACES = ('z', 'w', 'w+')


# ----------------------------------------------------------------------------------------------------------
# Configuration and latents.


@dataclasses.dataclass(frozen=True)
class InvertConfig:
    """Projection settings. The schedule and hyperparameters default to NVlabs `projector.py`'s (Adam 0.1,
    ramps, latent noise, noise regularisation 1e5); the plain defaults optimise W+ without noise maps.
    `InvertConfig.nvlabs()` is exactly projector.py (one W plus the noise maps, randomly initialised);
    `InvertConfig.stylealign()` is StyleAlign's translation setting (Z space, z = 0 start, truncation 0.5,
    500 steps, noise maps optimised)."""

    space: str = 'w+'  # 'z' | 'w' | 'w+'
    noise: bool = False  # also optimise per-image noise maps (else the model's const noise)
    noise_init: str = 'const'  # 'const': start from the model's noise_const | 'random': fresh N(0, 1)
    steps: int = 1000
    lr: float = 0.1
    lr_rampup: float = 0.05  # fraction of steps
    lr_rampdown: float = 0.25
    latent_noise: float = 0.05  # x std (w_std in W/W+, z_std in Z)
    latent_noise_ramp: float = 0.75
    noise_reg: float = 1e5
    truncation_psi: float = 1.0  # Z only: ws = mapping(z, psi) toward w_avg
    truncation_cutoff: int | None = None
    z_std: float = 1.0  # Z only: scale of the latent noise (StyleAlign: 1)
    w_avg_samples: int = 10_000
    w_avg_seed: int = 123
    stop_below: float | None = None  # per-image stop once its distance falls below this
    stop_patience: int | None = None  # per-image stop after this many steps without relative improvement
    stop_min_delta: float = 1e-4  # ... of at least this fraction
    chunk: int = 50  # steps between progress updates / all-stopped checks

    def __post_init__(self):
        if self.space not in SPACES:
            raise InputError(f'space must be one of {SPACES}, got {self.space!r}')
        if self.noise_init not in ('const', 'random'):
            raise InputError(f"noise_init must be 'const' or 'random', got {self.noise_init!r}")
        if self.steps < 1:
            raise InputError(f'steps must be >= 1, got {self.steps}')

    @classmethod
    def nvlabs(cls, **kw) -> InvertConfig:
        """NVlabs `projector.py`: one W [1, w_dim] broadcast to every layer, started at w_avg, latent noise
        w_std * 0.05 ramped down over 75% of the steps, and the noise maps optimised too (reset to N(0, 1),
        regularised, renormalised after every step), Adam (0.9, 0.999) lr 0.1 with ramp-up 5% / cosine
        ramp-down 25%, 1000 steps, w_avg / w_std from 10,000 z (seed 123)."""
        base = dict(space='w', noise=True, noise_init='random')
        base.update(kw)
        return cls(**base)

    @classmethod
    def stylealign(cls, **kw) -> InvertConfig:
        base = dict(space='z', noise=True, steps=500, truncation_psi=0.5)
        base.update(kw)
        return cls(**base)

    def replace(self, **kw) -> InvertConfig:
        return dataclasses.replace(self, **kw)


PRESETS = {'nvlabs': InvertConfig.nvlabs, 'stylealign': InvertConfig.stylealign}


@flax.struct.dataclass
class Latents:
    """Inverted codes for N images.

    code: z [N, z_dim] (space 'z') or ws [N, num_ws, w_dim] ('w': all rows equal; 'w+').
    noise: {layer: [N, r, r]} unit-variance noise maps, or None (decode with the model's const noise).
    c: [N, c_dim] labels for conditional models, or None.
    """

    code: Any
    noise: Any = None
    c: Any = None
    space: str = flax.struct.field(pytree_node=False, default='w+')
    truncation_psi: float = flax.struct.field(pytree_node=False, default=1.0)
    truncation_cutoff: int | None = flax.struct.field(pytree_node=False, default=None)

    def __len__(self):
        return int(self.code.shape[0])

    def ws(self, gen):
        """[N, num_ws, w_dim] for `gen` (Z codes go through gen's own mapping and w_avg, with the stored psi)."""
        if self.space == 'z':
            return gen.mapping(self.code, self.c, self.truncation_psi, self.truncation_cutoff)
        return jnp.asarray(self.code, jnp.float32)

    def take(self, idx) -> Latents:
        idx = np.asarray(idx)
        sel = lambda a: None if a is None else jnp.asarray(a)[idx]
        noise = None if self.noise is None else {k: sel(v) for k, v in self.noise.items()}
        return self.replace(code=sel(self.code), noise=noise, c=sel(self.c))

    @staticmethod
    def concat(parts: Sequence[Latents]) -> Latents:
        p0 = parts[0]
        cat = lambda xs: None if xs[0] is None else jnp.concatenate([jnp.asarray(x) for x in xs])
        noise = None if p0.noise is None else {k: cat([p.noise[k] for p in parts]) for k in p0.noise}
        return p0.replace(code=cat([p.code for p in parts]), noise=noise, c=cat([p.c for p in parts]))


def check_latents(gen, latents: Latents, what: str = 'latents') -> None:
    """ValueError unless `latents` fit `gen` (code, noise-map and label shapes): latents inverted in another
    generator fail here with both shapes named instead of deep inside the first matrix product."""
    code = np.shape(latents.code)
    n = code[0] if code else 0
    if latents.space == 'z':
        want, have = (gen.z_dim,), tuple(code[1:])
        kind = 'z [z_dim]'
    else:
        want, have = (gen.num_ws, gen.w_dim), tuple(code[1:])
        kind = 'ws [num_ws, w_dim]'
    if have != want:
        raise InputError(
            f'{what} do not fit this generator: {latents.space} codes of shape {list(have)}, the '
            f'generator takes {kind} = {list(want)} (latents inverted in another model?)'
        )
    if latents.noise is not None:
        shapes = gen.noise_shapes
        extra = sorted(set(latents.noise) - set(shapes))
        missing = sorted(set(shapes) - set(latents.noise))
        if extra or missing:
            raise InputError(
                f'{what}: noise maps {extra or missing} {"unknown to" if extra else "missing for"} '
                f'this generator (latents inverted in another model?)'
            )
        for k, (h, w) in shapes.items():
            if tuple(np.shape(latents.noise[k])) != (n, h, w):
                raise InputError(
                    f'{what}: noise map {k} has shape {list(np.shape(latents.noise[k]))}, '
                    f'the generator needs {[n, h, w]}'
                )
    c_dim = gen.config.c_dim
    if c_dim and (latents.c is None or tuple(np.shape(latents.c)) != (n, c_dim)):
        raise InputError(f'{what}: a conditional generator ({c_dim} classes) needs labels c [{n}, {c_dim}]')


def decode(gen, latents: Latents, noise_mode: str = 'const', key=None):
    """Images [N, H, W, C] of `latents` rendered by `gen` (their own noise maps when they have them)."""
    ws = latents.ws(gen)
    if latents.noise is not None:
        return gen.synthesis(ws, noise=latents.noise)
    return gen.synthesis(ws, noise_mode=noise_mode, key=key)


@dataclasses.dataclass
class InvertResult:
    latents: Latents
    images: np.ndarray  # reconstructions [N, H, W, C] float32
    distance: np.ndarray  # final loss distance per image (no latent noise)
    psnr: np.ndarray  # dB vs the target, per image
    history: np.ndarray  # [steps, N] distance per step (NaN after an image stopped)
    steps_run: np.ndarray  # [N]
    w_stats: tuple


# ----------------------------------------------------------------------------------------------------------
# Pieces.


def w_stats(gen, n: int = 10_000, seed: int = 123, batch: int = 2000, c=None):
    """(w_avg [w_dim], w_std scalar) from n mapped z ~ N(0, I) (np RandomState(seed), as NVlabs projector)."""
    z = np.random.RandomState(seed).randn(n, gen.z_dim).astype(np.float32)
    ws = []
    for i in range(0, n, batch):
        cc = None if c is None else jnp.broadcast_to(jnp.asarray(c)[:1], (min(batch, n - i), gen.config.c_dim))
        ws.append(np.asarray(gen.mapping(z[i : i + batch], cc)[:, 0], np.float64))
    w = np.concatenate(ws)
    avg = w.mean(0)
    std = math.sqrt(np.sum((w - avg) ** 2) / n)
    return avg.astype(np.float32), float(std)


def noise_regularization(noise):
    """NVlabs noise regulariser per image: [N]. noise: {layer: [N, r, r]}."""
    total = 0.0
    for m in noise.values():
        x = m
        while True:
            total = total + jnp.square(jnp.mean(x * jnp.roll(x, 1, axis=2), axis=(1, 2)))
            total = total + jnp.square(jnp.mean(x * jnp.roll(x, 1, axis=1), axis=(1, 2)))
            if x.shape[1] <= 8:
                break
            n, r = x.shape[0], x.shape[1]
            x = x.reshape(n, r // 2, 2, r // 2, 2).mean(axis=(2, 4))
    return total


def normalize_noise(noise):
    out = {}
    for k, m in noise.items():
        m = m - jnp.mean(m, axis=(1, 2), keepdims=True)
        out[k] = m * jax.lax.rsqrt(jnp.mean(jnp.square(m), axis=(1, 2), keepdims=True))
    return out


def schedule(step, steps, hp):
    """(lr, latent-noise scale) at `step` (traced)."""
    t = step / steps
    ramp = jnp.minimum(1.0, (1.0 - t) / hp['lr_rampdown'])
    ramp = 0.5 - 0.5 * jnp.cos(ramp * jnp.pi)
    ramp = ramp * jnp.minimum(1.0, t / hp['lr_rampup'])
    noise_scale = hp['std'] * hp['latent_noise'] * jnp.square(jnp.maximum(0.0, 1.0 - t / hp['latent_noise_ramp']))
    return hp['lr'] * ramp, noise_scale


def _to_ws(gen, space, x, c, psi, cutoff):
    if space == 'z':
        return gen.mapping(x, c, psi, cutoff)
    if space == 'w':
        return jnp.broadcast_to(x, (x.shape[0], gen.num_ws, x.shape[-1]))
    return x


def _bmask(active, x):
    return active.reshape((-1,) + (1,) * (x.ndim - 1))


_ADAM = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)


@functools.partial(jax.jit, static_argnames=('space', 'cutoff'), donate_argnames=('state',))
def _step(gen, loss, target_feats, keys, c, hp, state, step, *, space, cutoff):
    """One optimisation step for the whole batch; returns (state, per-image distance or NaN if stopped).

    (A Python loop over this jitted step: on XLA:CPU a lax.scan over the same body runs ~5x slower.)"""
    steps = hp['steps']

    def objective(params, wnoise):
        ws = _to_ws(gen, space, params['x'] + wnoise, c, hp['psi'], cutoff)
        img = gen.synthesis(ws, noise_mode='const', noise=params['noise'] or None)
        dist = loss.distance(loss.features(img), target_feats)
        reg = noise_regularization(params['noise']) if params['noise'] else jnp.zeros_like(dist)
        return jnp.sum(dist + hp['noise_reg'] * reg), dist

    lr, nscale = schedule(step.astype(jnp.float32), steps, hp)
    x = state['params']['x']
    ks = jax.vmap(lambda k: jax.random.fold_in(k, step))(keys)
    wnoise = jax.vmap(lambda k: jax.random.normal(k, x.shape[1:]))(ks) * nscale
    (_, dist), grads = jax.value_and_grad(objective, has_aux=True)(state['params'], wnoise)
    active = state['active'] & (step < steps)
    upd, adam = _ADAM.update(grads, state['adam'])
    new = jax.tree_util.tree_map(lambda p, u: p - lr * u, state['params'], upd)
    if new['noise']:
        new['noise'] = normalize_noise(new['noise'])
    params = jax.tree_util.tree_map(lambda a, b: jnp.where(_bmask(active, a), a, b), new, state['params'])
    adam = jax.tree_util.tree_map(
        lambda a, b: jnp.where(_bmask(active, a), a, b) if a.ndim and a.shape[0] == active.shape[0] else a,
        adam,
        state['adam'],
    )
    improved = dist < state['best'] * (1.0 - hp['min_delta'])
    best = jnp.where(active & improved, dist, state['best'])
    since = jnp.where(active & ~improved, state['since'] + 1, jnp.where(active, 0, state['since']))
    stop = (dist < hp['stop_below']) | (since >= hp['patience'])
    new_state = dict(
        params=params,
        adam=adam,
        best=best,
        since=since,
        active=active & ~stop & (step + 1 < steps),
        steps_run=state['steps_run'] + active.astype(jnp.int32),
    )
    return new_state, jnp.where(active, dist, jnp.nan)


@jax.jit
def _score(loss, img, target_feats, target):
    return loss.distance(loss.features(img), target_feats), psnr(img, target)


def _evaluate(gen, loss, target, target_feats, params, c, psi, *, space, cutoff):
    """Final render without latent noise (through the model's own jitted entry points, whose compiles are
    shared with every other call of the same shapes), distance and PSNR."""
    x = params['x']
    if space == 'z':
        ws = gen.mapping(x, c, psi, cutoff)
    elif space == 'w':
        ws = jnp.broadcast_to(x, (x.shape[0], gen.num_ws, x.shape[-1]))
    else:
        ws = x
    img = gen.synthesis(ws, noise_mode='const', noise=params['noise'] or None)
    dist, ps = _score(loss, img, target_feats, target)
    return img, ws, dist, ps


@jax.jit
def _features(loss, target):
    return loss.features(target)


def const_noise(gen) -> dict:
    """The model's own noise maps {layer: [r, r]} (what noise_mode='const' renders with)."""
    buf = gen.variables['buffers']['synthesis']
    out = {}
    for name in gen.noise_shapes:
        block, layer = name.split('.')
        out[name] = jnp.asarray(buf[block][layer]['noise_const'], jnp.float32)
    return out


def _init_noise(gen, keys, how):
    out = {}
    n = keys.shape[0]
    if how == 'const':
        return {k: jnp.broadcast_to(v, (n,) + v.shape) for k, v in const_noise(gen).items()}
    for j, (name, (h, w)) in enumerate(gen.noise_shapes.items()):
        out[name] = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 1_000_000 + j), (h, w)))(keys)
    return out


# ----------------------------------------------------------------------------------------------------------
# Public entry points.


def invert(
    gen,
    images,
    config: InvertConfig | None = None,
    *,
    loss=None,
    seed: int = 0,
    ids=None,
    c=None,
    init: Latents | None = None,
    batch_size: int | None = None,
    stats=None,
    progress: bool = True,
    desc: str = 'invert',
) -> InvertResult:
    """Project images [N, H, W, C] (float in [-1, 1], or uint8) into `gen`'s `config.space`.

    loss: a loss pytree (see alignjax.invert.losses) or a name for `make_loss` ('auto' = LPIPS needs weights,
      so the weight-free `PixelSSIM`); default 'auto'.
    seed, ids: image i draws its randomness from fold_in(key(seed), ids[i]) (ids default 0..N-1), so results
      do not depend on how images are batched.
    init: optional starting latents (same space); default w_avg (W/W+) or 0 (Z).
    batch_size: optimise this many images at a time (the last batch is padded, so one compile serves all).
    stats: precomputed `w_stats(gen)` to skip the 10,000-sample estimate.
    """
    cfg = config or InvertConfig()
    if loss is None or isinstance(loss, str):
        loss = make_loss(loss or 'auto')
    imgs = np.asarray(images)
    if imgs.dtype == np.uint8:
        imgs = imgs.astype(np.float32) / 127.5 - 1.0
    imgs = imgs.astype(np.float32)
    res = gen.resolution
    if imgs.ndim != 4 or imgs.shape[1:] != (res, res, gen.config.img_channels):
        raise InputError(f'images must be [N, {res}, {res}, {gen.config.img_channels}] (NHWC), got {imgs.shape}')
    n = imgs.shape[0]
    ids = np.arange(n) if ids is None else np.asarray(ids)
    if gen.config.c_dim and c is None:
        raise InputError(f'conditional generator ({gen.config.c_dim} classes): pass c [N, c_dim]')
    if stats is None and cfg.space != 'z':
        stats = w_stats(gen, cfg.w_avg_samples, cfg.w_avg_seed, c=c)
    elif stats is None:  # Z starts at 0 and perturbs with z_std: no W statistics needed
        stats = (np.zeros(gen.w_dim, np.float32), 0.0)
    bs = n if batch_size is None else max(1, min(batch_size, n))
    parts = []
    for s in range(0, n, bs):
        idx = np.arange(s, min(s + bs, n))
        pad = np.concatenate([idx, np.full(bs - len(idx), idx[-1])])
        part = _invert_batch(
            gen,
            imgs[pad],
            cfg,
            loss,
            seed,
            ids[pad],
            None if c is None else np.asarray(c)[pad],
            None if init is None else init.take(pad),
            stats,
            progress,
            f'{desc} {s // bs + 1}/{-(-n // bs)}' if bs < n else desc,
        )
        if len(idx) < bs:
            k = len(idx)
            part = InvertResult(
                latents=part.latents.take(np.arange(k)),
                images=part.images[:k],
                distance=part.distance[:k],
                psnr=part.psnr[:k],
                history=part.history[:, :k],
                steps_run=part.steps_run[:k],
                w_stats=stats,
            )
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    return InvertResult(
        latents=Latents.concat([p.latents for p in parts]),
        images=np.concatenate([p.images for p in parts]),
        distance=np.concatenate([p.distance for p in parts]),
        psnr=np.concatenate([p.psnr for p in parts]),
        history=np.concatenate([p.history for p in parts], axis=1),
        steps_run=np.concatenate([p.steps_run for p in parts]),
        w_stats=stats,
    )


def _invert_batch(gen, target, cfg, loss, seed, ids, c, init, stats, progress, desc):
    n = target.shape[0]
    w_avg, w_std = stats
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.asarray(ids, jnp.uint32))
    if init is not None:
        if init.space != cfg.space:
            raise InputError(f'init latents are in {init.space!r}, config.space is {cfg.space!r}')
        x0 = jnp.asarray(init.code, jnp.float32)
        if cfg.space == 'w':
            x0 = x0[:, :1]
    elif cfg.space == 'z':
        x0 = jnp.zeros((n, gen.z_dim), jnp.float32)
    elif cfg.space == 'w':
        x0 = jnp.broadcast_to(jnp.asarray(w_avg), (n, 1, gen.w_dim))
    else:
        x0 = jnp.broadcast_to(jnp.asarray(w_avg), (n, gen.num_ws, gen.w_dim))
    noise = {}
    if cfg.noise:
        noise = (
            dict(init.noise) if init is not None and init.noise is not None else _init_noise(gen, keys, cfg.noise_init)
        )
    params = {'x': jnp.array(x0), 'noise': {k: jnp.asarray(v, jnp.float32) for k, v in noise.items()}}
    state = dict(
        params=params,
        adam=_ADAM.init(params),
        best=jnp.full((n,), jnp.inf, jnp.float32),
        since=jnp.zeros((n,), jnp.int32),
        active=jnp.ones((n,), bool),
        steps_run=jnp.zeros((n,), jnp.int32),
    )
    f32 = lambda v: jnp.asarray(v, jnp.float32)
    hp = dict(
        steps=f32(cfg.steps),
        lr=f32(cfg.lr),
        lr_rampup=f32(cfg.lr_rampup),
        lr_rampdown=f32(cfg.lr_rampdown),
        latent_noise=f32(cfg.latent_noise),
        latent_noise_ramp=f32(cfg.latent_noise_ramp),
        noise_reg=f32(cfg.noise_reg),
        psi=f32(cfg.truncation_psi),
        std=f32(cfg.z_std if cfg.space == 'z' else w_std),
        min_delta=f32(cfg.stop_min_delta),
        stop_below=f32(-np.inf if cfg.stop_below is None else cfg.stop_below),
        patience=jnp.asarray(np.iinfo(np.int32).max if cfg.stop_patience is None else cfg.stop_patience, jnp.int32),
    )
    cj = None if c is None else jnp.asarray(c, jnp.float32)
    target_j = jnp.asarray(target)
    feats = _features(loss, target_j)
    chunk = max(1, min(cfg.chunk, cfg.steps))
    hist = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, desc=desc, unit='step', leave=False)
    try:
        pending = []
        for step in range(cfg.steps):
            state, d = _step(
                gen,
                loss,
                feats,
                keys,
                cj,
                hp,
                state,
                jnp.asarray(step, jnp.int32),
                space=cfg.space,
                cutoff=cfg.truncation_cutoff,
            )
            pending.append(d)
            if len(pending) == chunk or step == cfg.steps - 1:
                hist.append(np.asarray(jnp.stack(pending)))
                pending = []
                if bar is not None:
                    bar.update(hist[-1].shape[0])
                    with np.errstate(all='ignore'):
                        bar.set_postfix(
                            dist=f'{np.nanmean(hist[-1][-1]):.4f}', active=int(np.asarray(state['active']).sum())
                        )
                if not bool(np.asarray(state['active']).any()):
                    break
    finally:
        if bar is not None:
            bar.close()
    history = np.concatenate(hist)[: cfg.steps]
    if history.shape[0] < cfg.steps:
        history = np.concatenate([history, np.full((cfg.steps - history.shape[0], n), np.nan, np.float32)])
    params = state['params']
    img, ws, dist, ps = _evaluate(
        gen, loss, target_j, feats, params, cj, cfg.truncation_psi, space=cfg.space, cutoff=cfg.truncation_cutoff
    )
    code = params['x'] if cfg.space == 'z' else ws
    lat = Latents(
        code=code,
        noise=dict(params['noise']) if cfg.noise else None,
        c=cj,
        space=cfg.space,
        truncation_psi=cfg.truncation_psi if cfg.space == 'z' else 1.0,
        truncation_cutoff=cfg.truncation_cutoff if cfg.space == 'z' else None,
    )
    return InvertResult(
        latents=lat,
        images=np.asarray(img),
        distance=np.asarray(dist),
        psnr=np.asarray(ps),
        history=history,
        steps_run=np.asarray(state['steps_run']),
        w_stats=stats,
    )
