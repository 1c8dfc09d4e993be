"""NVlabs state dicts (names and layouts of stylegan2-ada-pytorch) <-> our flax variables.

The readers in `alignjax.io.formats` turn every supported file into NVlabs state dicts; this module is the one
place that knows how those tensors map onto `alignjax.nn.networks`. The expected tensors are the NVlabs schema
(`formats.schema.g_schema_of` / `d_schema_of`, derived from the architecture table) in our layouts. Rules, by
the last name component:
  weight, 2-D [out, in]          -> [in, out]
  weight, 4-D [O, I, kh, kw]     -> [kh, kw, I, O]
  const [C, 4, 4]                -> [4, 4, C]
  w_avg, noise_const             -> 'buffers' collection
  resample_filter                -> checked against the config's filter, not stored
  everything else                -> 'params' as is
"""

from __future__ import annotations

from collections.abc import Mapping

import flax
import numpy as np

from alignjax.errors import CheckpointError
from alignjax.io.formats.common import _where
from alignjax.io.formats.schema import Schema, d_schema_of, filter_keys, g_schema_of
from alignjax.nn import networks as N
from alignjax.nn import ops
from alignjax.nn.arch import DEFAULT_RESAMPLE_FILTER, discriminator_layers, synthesis_weights

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


def _collection(name: str) -> str:
    return 'buffers' if name.rsplit('.', 1)[-1] in _BUFFERS else 'params'


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


def schema_of(cfg) -> Schema:
    """The NVlabs schema of a Generator or Discriminator config."""
    return g_schema_of(cfg) if isinstance(cfg, N.GeneratorConfig) else d_schema_of(cfg)


def variable_shapes(cfg) -> dict[str, dict[str, tuple]]:
    """{collection: {dotted name: shape}} of the flax variables of `cfg`'s network (from the table, no tracing)."""
    out: dict[str, dict[str, tuple]] = {'params': {}, 'buffers': {}}
    for name, shape in schema_of(cfg):
        if shape is not None:
            perm = _layout(name, len(shape))
            out[_collection(name)][name] = tuple(shape) if perm is None else tuple(shape[i] for i in perm)
    return {col: d for col, d in out.items() if d}


def _filter2d(taps) -> np.ndarray:
    return np.outer(*[ops.setup_filter(taps)] * 2).astype(np.float32)


def resampling_filters(cfg) -> set[str]:
    """The filter buffers that hold `cfg.resample_filter`, from the layer table: every block's and those of the
    layers that resample (G: 2x-up conv0 and skip; D: 2x-down conv1 and skip). NVlabs builds its other layers
    with the default filter, which they never read."""
    if isinstance(cfg, N.GeneratorConfig):
        specs = synthesis_weights(cfg)
        blocks = {f'synthesis.b{s.res}.resample_filter' for s in specs}
        return blocks | {f'synthesis.{s.name}.resample_filter' for s in specs if s.up > 1}
    specs = discriminator_layers(cfg)
    blocks = {f'b{s.res}.resample_filter' for s in specs if s.res > 4}
    return blocks | {f'{s.name}.resample_filter' for s in specs if s.down > 1}


def from_nvlabs(
    sd: Mapping[str, np.ndarray],
    cfg,
    *,
    what: str = 'network',
    source: str = '?',
    allow_missing=(),
    checked: bool = False,
    names: Mapping[str, tuple] | None = None,
) -> dict:
    """NVlabs state dict -> {'params': ..., 'buffers': ...} (numpy) for `cfg` (Generator or Discriminator
    config). Every key and shape is checked, unless `checked` says the state dict already passed the schema of
    this architecture (`formats.read_raw` does: then only keys outside it and filter values are refused);
    errors name the file, the network and the key (`names`: {NVlabs key: (the file's label, its key)}, as
    `RawCheckpoint.names` has them, for the file's own names)."""
    schema = schema_of(cfg)
    want = {k: shp for k, shp in schema if shp is not None}
    f2 = _filter2d(cfg.resample_filter)
    unused = set(filter_keys(schema)) - resampling_filters(cfg)  # buffers NVlabs never reads
    got: dict[str, dict[str, np.ndarray]] = {'params': {}, 'buffers': {}}
    for name, a in sd.items():
        a = np.asarray(a)
        if name.rsplit('.', 1)[-1] == 'resample_filter':
            if name in unused:
                continue
            if a.shape != f2.shape or not np.allclose(a, f2, atol=1e-6):
                where = _where((names or {}).get(name), what, name)
                raise CheckpointError(
                    f'{source}: {where} holds a resample filter {a.shape} that is '
                    f'not the configured {cfg.resample_filter}'
                )
            continue
        if name not in want:
            raise CheckpointError(
                f'{source}: {what} has unexpected key {name!r} {a.shape}; the inferred architecture has no such tensor'
            )
        if not checked and a.shape != tuple(want[name]):
            ours = _to_ours(name, a).shape
            need = _to_ours(name, np.empty(want[name], np.bool_)).shape
            raise CheckpointError(
                f'{source}: {what} key {name!r} has shape {a.shape} (ours {ours}) but '
                f'the inferred architecture needs {need}'
            )
        got[_collection(name)][name] = np.array(_to_ours(name, a), dtype=np.float32, order='C', copy=True)
    if not checked:
        missing = [k for k in want if k not in got[_collection(k)] and k not in allow_missing]
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
    used = resampling_filters(cfg)
    for key in filter_keys(schema_of(cfg)):
        sd[key] = _filter2d(cfg.resample_filter if key in used else DEFAULT_RESAMPLE_FILTER)
    return sd
