"""The public model objects: `Generator`, `Discriminator`, `new_generator`, `new_discriminator`.

`Generator` and `Discriminator` are pytrees (variables are leaves, the config is static), so they pass
through `jax.jit`, `jax.grad` and `jax.vmap` as arguments; every method is itself jit-compiled, so eager
calls are fast too. Parent, child and morphed models are the same class with different variables.
They are what users hold (`alignjax.Generator`); the flax modules they run are `alignjax.nn.Generator` /
`alignjax.nn.Discriminator` (`gen.module`).

Checkpoints (`Checkpoint`, `load_checkpoint`) live in `alignjax.io.checkpoint`, which builds on this module;
`alignjax.model.Checkpoint` / `alignjax.model.load_checkpoint` still work for old imports: the package
(`alignjax/__init__.py`) sets them here, so this module never imports io (no cycle).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from alignjax.nn import networks as N
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig

# ----------------------------------------------------------------------------------------------------------
# Jitted entry points (module-level so the compile cache is shared by every model object).


@functools.partial(jax.jit, static_argnames=('cfg', 'truncation_cutoff', 'truncate'))
def _mapping(cfg, variables, z, c, truncation_psi, truncation_cutoff, truncate=True):
    # truncate=False (psi == 1, known before tracing): the module gets a Python 1 and skips the truncation
    # arithmetic entirely (no rounding, and a NaN w_avg cannot reach untruncated samples), as NVlabs does
    psi = truncation_psi if truncate else 1
    return N.Generator(cfg).apply(variables, z, c, psi, truncation_cutoff, method='map')


def _is_one(psi) -> bool:
    """psi is a concrete 1 (Python / NumPy scalar or a concrete 0-d array), i.e. truncation is the identity."""
    if isinstance(psi, jax.core.Tracer):
        return False
    try:
        a = np.asarray(psi)
    except Exception:  # noqa: BLE001 -- anything not array-like: let the module decide
        return False
    return a.ndim == 0 and a.dtype.kind in 'biuf' and float(a) == 1.0


@functools.partial(jax.jit, static_argnames=('cfg',))
def _styles(cfg, variables, ws):
    # a tuple in forward order: jit would sort a dict's keys ('b16.conv0' before 'b4.conv1')
    return tuple(N.Generator(cfg).apply(variables, ws, method='styles').values())


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

    def with_impl(self, **kw) -> Generator:
        """Same weights, other implementation choices (see `alignjax.nn.networks.Impl`)."""
        return self.replace(config=self.config.replace(impl=dataclasses.replace(self.config.impl, **kw)))

    def with_variables(self, variables) -> Generator:
        return self.replace(variables=variables)

    def mapping(self, z, c=None, truncation_psi=1.0, truncation_cutoff: int | None = None):
        z = jnp.asarray(z, jnp.float32)
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f'z must be [N, {self.config.z_dim}], got {tuple(z.shape)}')
        one = _is_one(truncation_psi)
        return _mapping(
            self.config, self.variables, z, c, 1.0 if one else truncation_psi, truncation_cutoff, truncate=not one
        )

    def synthesis(self, ws, noise_mode: str = 'const', noise=None, key=None):
        ws = jnp.asarray(ws, jnp.float32)
        N._check_ws(ws, self.config)
        return _synthesis(self.config, self.variables, ws, noise_mode, noise, key)

    def styles(self, ws) -> dict:
        """StyleSpace {layer name: [N, C_in]} in forward order (that of `style_names`), so
        `zip(gen.style_names, gen.styles(ws).values())` pairs each name with its own layer."""
        ws = jnp.asarray(ws, jnp.float32)
        N._check_ws(ws, self.config)
        return dict(zip(self.style_names, _styles(self.config, self.variables, ws)))

    def synthesis_from_styles(self, styles, noise_mode: str = 'const', noise=None, key=None):
        return _from_styles(self.config, self.variables, dict(styles), noise_mode, noise, key)

    def __call__(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode='const', noise=None, key=None):
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

    def with_impl(self, **kw) -> Discriminator:
        return self.replace(config=self.config.replace(impl=dataclasses.replace(self.config.impl, **kw)))

    def __call__(self, img, c=None):
        img = jnp.asarray(img)
        cfg = self.config
        if img.ndim != 4 or img.shape[1:] != (cfg.resolution, cfg.resolution, cfg.img_channels):
            raise ValueError(
                f'D expects images [N, {cfg.resolution}, {cfg.resolution}, {cfg.img_channels}] '
                f'(NHWC), got {tuple(img.shape)}'
            )
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
