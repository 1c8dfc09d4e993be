"""NVlabs state dicts (names and layouts of stylegan2-ada-pytorch) <-> our flax variables.

The readers in `formats.py` turn every supported file into NVlabs state dicts; this module is the one place
that knows how those tensors map onto `alignjax.nn.networks`. Rules, by the last name component:
  weight, 2-D [out, in]          -> [in, out]
  weight, 4-D [O, I, kh, kw]     -> [kh, kw, I, O]
  const [C, 4, 4]                -> [4, 4, C]
  w_avg, noise_const             -> 'buffers' collection
  resample_filter                -> checked against the config's filter, not stored
  everything else                -> 'params' as is
"""
from __future__ import annotations

from typing import Mapping

import flax
import jax
import numpy as np

from alignjax.io.safe_pickle import CheckpointError
from alignjax.nn import networks as N

_BUFFERS = ('w_avg', 'noise_const')


def _layout(name: str, ndim: int) -> tuple[int, ...] | None:
    """The transpose from NVlabs' layout (OI, OIHW, CHW) to ours (IO, HWIO, HWC), or None where they agree."""
    last = name.rsplit('.', 1)[-1]
    if last == 'weight' and ndim in (2, 4):
        return (1, 0) if ndim == 2 else (2, 3, 1, 0)
    return (1, 2, 0) if last == 'const' else None


def _to_ours(name: str, a: np.ndarray) -> np.ndarray:
    perm = _layout(name, a.ndim)
    return a if perm is None else a.transpose(perm)


def _to_theirs(name: str, a: np.ndarray) -> np.ndarray:
    perm = _layout(name, a.ndim)
    return a if perm is None else a.transpose(np.argsort(perm))


def _flat(tree, prefix=''):
    out = {}
    for k, v in tree.items():
        key = f'{prefix}.{k}' if prefix else k
        if isinstance(v, Mapping):
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out


def _nest(flat: Mapping[str, np.ndarray]) -> dict:
    out: dict = {}
    for k, v in flat.items():
        d = out
        *parents, last = k.split('.')
        for p in parents:
            d = d.setdefault(p, {})
        d[last] = v
    return out


def expected_shapes(module, cfg, sample_inputs) -> dict[str, dict[str, tuple]]:
    """{collection: {dotted name: shape}} of the module's variables, without computing anything."""
    shapes = jax.eval_shape(lambda *a: module.init(jax.random.key(0), *a), *sample_inputs)
    return {col: {k: tuple(v.shape) for k, v in _flat(flax.core.unfreeze(tree)).items()}
            for col, tree in shapes.items()}


def generator_shapes(cfg: N.GeneratorConfig):
    z = jax.ShapeDtypeStruct((1, cfg.z_dim), np.float32)
    c = jax.ShapeDtypeStruct((1, cfg.c_dim), np.float32) if cfg.c_dim else None
    return expected_shapes(N.Generator(cfg), cfg, (z, c))


def discriminator_shapes(cfg: N.DiscriminatorConfig):
    g = cfg.mbstd_group_size or 1
    img = jax.ShapeDtypeStruct((g, cfg.resolution, cfg.resolution, cfg.img_channels), np.float32)
    c = jax.ShapeDtypeStruct((g, cfg.c_dim), np.float32) if cfg.c_dim else None
    return expected_shapes(N.Discriminator(cfg), cfg, (img, c))


def from_nvlabs(sd: Mapping[str, np.ndarray], cfg, *, what: str = 'network', source: str = '?',
                allow_missing=()) -> dict:
    """NVlabs state dict -> {'params': ..., 'buffers': ...} (numpy) for `cfg` (Generator or Discriminator
    config). Every key and shape is checked; errors name the file, the network and the key."""
    is_g = isinstance(cfg, N.GeneratorConfig)
    expected = generator_shapes(cfg) if is_g else discriminator_shapes(cfg)
    want = {(col, k): shp for col, d in expected.items() for k, shp in d.items()}
    f2 = np.outer(*[N.ops.setup_filter(cfg.resample_filter)] * 2)
    got: dict[str, dict[str, np.ndarray]] = {'params': {}, 'buffers': {}}
    for name, a in sd.items():
        a = np.asarray(a)
        last = name.rsplit('.', 1)[-1]
        if last == 'resample_filter':
            if a.shape != f2.shape or not np.allclose(a, f2, atol=1e-6):
                raise CheckpointError(f'{source}: {what} key {name!r} holds a resample filter {a.shape} that is '
                                      f'not the configured {cfg.resample_filter}')
            continue
        col = 'buffers' if last in _BUFFERS else 'params'
        ours = np.array(_to_ours(name, a), dtype=np.float32, order='C', copy=True)
        if (col, name) not in want:
            raise CheckpointError(f'{source}: {what} has unexpected key {name!r} {a.shape}; the inferred '
                                  f'architecture has no such tensor')
        if ours.shape != want[(col, name)]:
            raise CheckpointError(f'{source}: {what} key {name!r} has shape {a.shape} (ours {ours.shape}) but '
                                  f'the inferred architecture needs {want[(col, name)]}')
        got[col][name] = ours
    missing = [k for (col, k) in want if k not in got[col] and k not in allow_missing]
    if missing:
        raise CheckpointError(f'{source}: {what} lacks keys {missing[:8]}{" ..." if len(missing) > 8 else ""}')
    return {col: _nest(d) for col, d in got.items() if d}


def to_nvlabs(variables: Mapping, cfg) -> dict[str, np.ndarray]:
    """Our variables -> NVlabs state dict, including the resample_filter buffers NVlabs modules carry."""
    flat = {}
    for col in ('params', 'buffers'):
        if col in variables:
            flat.update(_flat(flax.core.unfreeze(variables[col])))
    sd = {k: np.asarray(_to_theirs(k, np.asarray(v))) for k, v in flat.items()}
    f2 = np.outer(*[N.ops.setup_filter(cfg.resample_filter)] * 2).astype(np.float32)
    if isinstance(cfg, N.GeneratorConfig):
        for res in cfg.block_resolutions:
            sd[f'synthesis.b{res}.resample_filter'] = f2
            for conv in (['conv1'] if res == 4 else ['conv0', 'conv1']):
                sd[f'synthesis.b{res}.{conv}.resample_filter'] = f2
    else:
        for i, res in enumerate(cfg.block_resolutions):
            sd[f'b{res}.resample_filter'] = f2
            for layer in (['fromrgb'] if i == 0 else []) + ['conv0', 'conv1', 'skip']:
                sd[f'b{res}.{layer}.resample_filter'] = f2
        sd['b4.conv.resample_filter'] = f2
    return sd
