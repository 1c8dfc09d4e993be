"""The public model objects: `Generator`, `Discriminator`, `Checkpoint`, `load_checkpoint`, `new_generator`.

`Generator` and `Discriminator` are pytrees (variables are leaves, the config is static), so they pass
through `jax.jit`, `jax.grad` and `jax.vmap` as arguments; every method is itself jit-compiled, so eager
calls are fast too. Parent, child and morphed models are the same class with different variables.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Mapping

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from alignjax.nn import networks as N
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig, Impl


# ----------------------------------------------------------------------------------------------------------
# Jitted entry points (module-level so the compile cache is shared by every model object).

@functools.partial(jax.jit, static_argnames=('cfg', 'truncation_cutoff'))
def _mapping(cfg, variables, z, c, truncation_psi, truncation_cutoff):
    return N.Generator(cfg).apply(variables, z, c, truncation_psi, truncation_cutoff, method='map')


@functools.partial(jax.jit, static_argnames=('cfg',))
def _styles(cfg, variables, ws):
    return N.Generator(cfg).apply(variables, ws, method='styles')


@functools.partial(jax.jit, static_argnames=('cfg', 'noise_mode'))
def _from_styles(cfg, variables, styles, noise_mode, noise, key):
    return N.Generator(cfg).apply(variables, styles, noise_mode, noise, key, method='from_styles')


@functools.partial(jax.jit, static_argnames=('cfg', 'noise_mode'))
def _synthesis(cfg, variables, ws, noise_mode, noise, key):
    return N.Generator(cfg).apply(variables, ws, noise_mode, noise, key, method='synthesize')


@functools.partial(jax.jit, static_argnames=('cfg',))
def _discriminate(cfg, variables, img, c):
    return N.Discriminator(cfg).apply(variables, img, c)


@flax.struct.dataclass
class Generator:
    """A StyleGAN2 generator: static `config` + `variables` {'params': ..., 'buffers': ...}.

    mapping(z [N, z_dim], c=None) -> ws [N, num_ws, w_dim]; synthesis(ws) -> images [N, H, W, C] float32;
    styles(ws) -> {layer: [N, C_in]} (StyleSpace); synthesis_from_styles(styles) -> images.
    """
    config: GeneratorConfig = flax.struct.field(pytree_node=False)
    variables: Any

    @property
    def params(self):
        return self.variables['params']

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    @property
    def w_avg(self):
        return self.variables['buffers']['mapping']['w_avg']

    @property
    def style_names(self) -> list[str]:
        return N.style_names(self.config)

    @property
    def noise_shapes(self) -> dict[str, tuple[int, int]]:
        return N.noise_shapes(self.config)

    @property
    def module(self) -> N.Generator:
        """The flax module, for raw `module.apply(gen.variables, ...)`."""
        return N.Generator(self.config)

    def with_impl(self, **kw) -> 'Generator':
        """Same weights, other implementation choices (see `alignjax.nn.networks.Impl`)."""
        return self.replace(config=self.config.replace(impl=dataclasses.replace(self.config.impl, **kw)))

    def with_variables(self, variables) -> 'Generator':
        return self.replace(variables=variables)

    def mapping(self, z, c=None, truncation_psi=1.0, truncation_cutoff: int | None = None):
        z = jnp.asarray(z, jnp.float32)
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f'z must be [N, {self.config.z_dim}], got {tuple(z.shape)}')
        return _mapping(self.config, self.variables, z, c, truncation_psi, truncation_cutoff)

    def synthesis(self, ws, noise_mode: str = 'const', noise=None, key=None):
        ws = jnp.asarray(ws, jnp.float32)
        N._check_ws(ws, self.config)
        return _synthesis(self.config, self.variables, ws, noise_mode, noise, key)

    def styles(self, ws):
        ws = jnp.asarray(ws, jnp.float32)
        N._check_ws(ws, self.config)
        return _styles(self.config, self.variables, ws)

    def synthesis_from_styles(self, styles, noise_mode: str = 'const', noise=None, key=None):
        return _from_styles(self.config, self.variables, dict(styles), noise_mode, noise, key)

    def __call__(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode='const', noise=None,
                 key=None):
        return self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff), noise_mode, noise, key)


@flax.struct.dataclass
class Discriminator:
    """A StyleGAN2 resnet discriminator: `D(img [N, H, W, C], c=None) -> logits [N, 1]`."""
    config: DiscriminatorConfig = flax.struct.field(pytree_node=False)
    variables: Any

    @property
    def params(self):
        return self.variables['params']

    @property
    def module(self) -> N.Discriminator:
        return N.Discriminator(self.config)

    def with_impl(self, **kw) -> 'Discriminator':
        return self.replace(config=self.config.replace(impl=dataclasses.replace(self.config.impl, **kw)))

    def __call__(self, img, c=None):
        img = jnp.asarray(img)
        cfg = self.config
        if img.ndim != 4 or img.shape[1:] != (cfg.resolution, cfg.resolution, cfg.img_channels):
            raise ValueError(f'D expects images [N, {cfg.resolution}, {cfg.resolution}, {cfg.img_channels}] '
                             f'(NHWC), got {tuple(img.shape)}')
        return _discriminate(cfg, self.variables, img, c)


# ----------------------------------------------------------------------------------------------------------
# Construction.

@functools.partial(jax.jit, static_argnames=('cfg',))
def _init_generator(cfg: GeneratorConfig, key):
    z = jnp.zeros((1, cfg.z_dim))
    c = jnp.zeros((1, cfg.c_dim)) if cfg.c_dim else None
    return N.Generator(cfg).init(key, z, c)


@functools.partial(jax.jit, static_argnames=('cfg',))
def _init_discriminator(cfg: DiscriminatorConfig, key):
    g = cfg.mbstd_group_size or 1
    img = jnp.zeros((g, cfg.resolution, cfg.resolution, cfg.img_channels))
    c = jnp.zeros((g, cfg.c_dim)) if cfg.c_dim else None
    return N.Discriminator(cfg).init(key, img, c)


def new_generator(key, resolution: int = 256, **config) -> Generator:
    """Randomly initialised generator (NVlabs initialisation; w_avg = 0, noise_const ~ N(0, 1)).
    Pass config fields as keywords, or a whole `config=GeneratorConfig(...)`."""
    cfg = config.pop('config', None) or GeneratorConfig(resolution=resolution, **config)
    return Generator(cfg, dict(_init_generator(cfg, key)))


def new_discriminator(key, resolution: int = 256, **config) -> Discriminator:
    cfg = config.pop('config', None) or DiscriminatorConfig(resolution=resolution, **config)
    return Discriminator(cfg, dict(_init_discriminator(cfg, key)))


def compute_w_avg(gen: Generator, n: int = 10_000, seed: int = 0, batch: int = 1000) -> np.ndarray:
    """Mean of mapping(z) over n z ~ N(0, I) (seeded), for checkpoints that carry no w_avg."""
    key = jax.random.key(seed)
    total = np.zeros((gen.config.w_dim,), np.float64)
    done = 0
    while done < n:
        b = min(batch, n - done)
        z = jax.random.normal(jax.random.fold_in(key, done), (b, gen.config.z_dim))
        c = None
        if gen.config.c_dim:
            c = jax.nn.one_hot(jnp.arange(b) % gen.config.c_dim, gen.config.c_dim)
        total += np.asarray(gen.mapping(z, c)[:, 0], np.float64).sum(0)
        done += b
    return (total / n).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# Checkpoints.

def _infer_base_max(chs: Mapping[int, int], what: str, source: str) -> tuple[int, int]:
    from alignjax.io.safe_pickle import CheckpointError
    chs = {int(r): int(c) for r, c in chs.items()}
    cmax = max(chs.values())
    below = [r for r, c in chs.items() if c < cmax]
    base = chs[max(below)] * max(below) if below else cmax * max(chs)
    if any(min(base // r, cmax) != c for r, c in chs.items()):
        raise CheckpointError(f'{source}: {what} channels {dict(sorted(chs.items()))} do not follow '
                              f'min(channel_base // res, channel_max) for any channel_base/channel_max')
    return base, cmax


def configs_from_raw(rc: Mapping[str, Any], source: str = '?') -> tuple[GeneratorConfig, DiscriminatorConfig | None]:
    """Model configs from the tensor-inferred config dict of `alignjax.io.formats`."""
    gb, gm = _infer_base_max(rc['g_channels'], 'generator', source) if rc.get('g_channels') else (
        rc.get('channel_base', 32768), rc.get('channel_max', 512))
    g = GeneratorConfig(resolution=int(rc['resolution']), z_dim=int(rc['z_dim']), w_dim=int(rc['w_dim']),
                        c_dim=int(rc.get('c_dim') or 0), img_channels=int(rc.get('img_channels', 3)),
                        mapping_layers=int(rc['mapping_layers']),
                        mapping_lr_mul=float(rc.get('mapping_lr_mul') or 0.01),
                        embed_features=rc.get('embed_features'),
                        channel_base=gb, channel_max=gm, conv_clamp=rc.get('conv_clamp'))
    d = None
    if rc.get('d_channels'):
        db, dm = _infer_base_max(rc['d_channels'], 'discriminator', source)
        d = DiscriminatorConfig(resolution=g.resolution, img_channels=g.img_channels, c_dim=g.c_dim,
                                channel_base=db, channel_max=dm, mbstd_group_size=rc.get('mbstd_group_size', 4),
                                mbstd_num_channels=int(rc.get('mbstd_num_channels', 1)),
                                cmap_dim=rc.get('cmap_dim') if g.c_dim else None,
                                mapping_layers=int(rc.get('d_mapping_layers') or 8),
                                conv_clamp=rc.get('conv_clamp'))
    return g, d


@dataclasses.dataclass
class Checkpoint:
    """A loaded checkpoint: networks 'G', 'G_ema', 'D' (whichever the file had) with their configs."""
    g_config: GeneratorConfig
    d_config: DiscriminatorConfig | None
    nets: dict[str, Any]                    # name -> variables (numpy or jax arrays)
    source: str = ''
    format: str = ''
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)

    def generator(self, which: str = 'G_ema') -> Generator:
        if which not in self.nets or which == 'D':
            have = [k for k in self.nets if k != 'D']
            raise KeyError(f'{self.source}: no generator {which!r} in this checkpoint (has {have})')
        return Generator(self.g_config, jax.tree_util.tree_map(jnp.asarray, self.nets[which]))

    def discriminator(self) -> Discriminator:
        if 'D' not in self.nets or self.d_config is None:
            raise KeyError(f'{self.source}: this checkpoint has no discriminator')
        return Discriminator(self.d_config, jax.tree_util.tree_map(jnp.asarray, self.nets['D']))

    def save(self, path) -> None:
        from alignjax.io.store import save_checkpoint
        save_checkpoint(path, self)

    def export_rosinality(self, path) -> None:
        from alignjax.io.export import export_rosinality
        export_rosinality(self, path)


def load_checkpoint(path) -> Checkpoint:
    """Load an NVlabs .pkl, rosinality .pt, NVlabs TF .pkl or our orbax directory (detected from content).

    Nothing in the file is executed: pickles go through an allow-list unpickler. Errors name the file and key.
    """
    from alignjax.io import convert, formats
    from alignjax.io.safe_pickle import CheckpointError
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    fmt = formats.detect_format(path)
    if fmt == 'orbax':
        from alignjax.io.store import load_store
        return load_store(path)
    raw = formats.read_raw(path)
    g_cfg, d_cfg = configs_from_raw(raw.config, path)
    nets, notes = {}, list(raw.notes)
    for name, sd in raw.nets.items():
        cfg = d_cfg if name == 'D' else g_cfg
        if cfg is None:
            raise CheckpointError(f'{path}: found network {name} but could not infer its architecture')
        missing_ok = () if name == 'D' else ('mapping.w_avg',)
        nets[name] = convert.from_nvlabs(sd, cfg, what=name, source=path, allow_missing=missing_ok)
    for name, v in nets.items():
        if name != 'D' and 'w_avg' not in v.get('buffers', {}).get('mapping', {}):
            v.setdefault('buffers', {}).setdefault('mapping', {})['w_avg'] = np.zeros(g_cfg.w_dim, np.float32)
            w_avg = compute_w_avg(Generator(g_cfg, jax.tree_util.tree_map(jnp.asarray, v)))
            v['buffers']['mapping']['w_avg'] = w_avg
            notes.append(f'{name}: the file has no w_avg; computed it as the mean of 10,000 mapped z (seed 0)')
    return Checkpoint(g_cfg, d_cfg, nets, source=path, format=fmt, notes=notes, extra=dict(raw.extra))
