"""The NVlabs state-dict schema (names, shapes, state_dict order), derived from the architecture table
(`alignjax.nn.arch`), and the check of a state dict against it (`_canonicalize`). Inferring the config back
from the tensors, and `finish` (where every reader ends): `alignjax.io.formats.infer`.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping

import numpy as np

from alignjax.errors import CheckpointError
from alignjax.io.formats.common import (
    _f32,
    _is_array,
    _shape,
    key_desc,
)
from alignjax.nn.arch import (
    block_resolutions,
    discriminator_table,
    mapping_layers,
    synthesis_table,
)

Schema = list[tuple[str, 'tuple | None']]  # (key, shape); shape None: a resample-filter buffer (any square 2-D)


# --------------------------------------------------------------------------------------------
# schema


def _dense_shapes(prefix: str, name: str, n_in: int, n_out: int) -> Schema:
    return [(f'{prefix}{name}.weight', (n_out, n_in)), (f'{prefix}{name}.bias', (n_out,))]


def g_schema(
    resolution: int,
    channels: Mapping[int, int],
    img_channels: int,
    z_dim: int,
    w_dim: int,
    c_dim: int,
    embed_features: int | None,
    num_mapping_layers: int,
    architecture: str = 'skip',
    layer_features: int | None = None,
    use_noise: bool = True,
) -> Schema:
    """Ordered (key, shape) list of an NVlabs Generator state dict ('orig' | 'skip' | 'resnet'; `use_noise`
    False: no noise_strength / noise_const)."""
    specs = synthesis_table(resolution, channels, img_channels, architecture)
    out: Schema = []
    for r in block_resolutions(resolution):
        b = f'synthesis.b{r}.'
        layers = [s for s in specs if s.res == r]
        if r == 4:
            out.append((b + 'const', (layers[0].out_channels, 4, 4)))
        out.append((b + 'resample_filter', None))
        for s in layers:
            p = f'synthesis.{s.name}.'
            out.append((p + 'weight', (s.out_channels, s.in_channels, s.kernel, s.kernel)))
            if s.kind == 'skip':  # Conv2dLayer without bias or style
                out.append((p + 'resample_filter', None))
                continue
            if s.kind == 'conv':
                out += [(p + 'noise_strength', ())] if use_noise else []
                out += [(p + 'bias', (s.out_channels,)), (p + 'resample_filter', None)]
                out += [(p + 'noise_const', (s.res, s.res))] if use_noise else []
            else:
                out.append((p + 'bias', (s.out_channels,)))
            out += _dense_shapes(p, 'affine', w_dim, s.in_channels)
    out.append(('mapping.w_avg', (w_dim,)))
    for d in mapping_layers(z_dim, c_dim, w_dim, num_mapping_layers, embed_features, layer_features):
        out += _dense_shapes('mapping.', d.name, d.in_features, d.out_features)
    return out


def d_schema(
    resolution: int,
    channels: Mapping[int, int],
    img_channels: int,
    mbstd_num_channels: int = 1,
    c_dim: int = 0,
    cmap_dim: int | None = None,
    num_mapping_layers: int = 0,
    architecture: str = 'resnet',
    embed_features: int | None = None,
    layer_features: int | None = None,
) -> Schema:
    """Ordered (key, shape) list of an NVlabs Discriminator state dict ('orig' | 'skip' | 'resnet')."""
    out: Schema = []
    blocks = set()
    for s in discriminator_table(
        resolution,
        channels,
        img_channels,
        mbstd_num_channels,
        c_dim,
        cmap_dim,
        num_mapping_layers,
        architecture,
        embed_features,
        layer_features,
    ):
        if s.res > 4 and s.res not in blocks:
            blocks.add(s.res)
            out.append((f'b{s.res}.resample_filter', None))
        if s.kind == 'dense':
            out += _dense_shapes('', s.name, s.in_features, s.out_features)
            continue
        out.append((f'{s.name}.weight', (s.out_features, s.in_features, s.kernel, s.kernel)))
        if s.bias:
            out.append((f'{s.name}.bias', (s.out_features,)))
        out.append((f'{s.name}.resample_filter', None))
    return out


def g_schema_of(cfg) -> Schema:
    """:func:`g_schema` of a `GeneratorConfig`."""
    return g_schema(
        cfg.resolution,
        cfg.channels,
        cfg.img_channels,
        cfg.z_dim,
        cfg.w_dim,
        cfg.c_dim,
        cfg.embed_features,
        cfg.mapping_layers,
        cfg.architecture,
        cfg.layer_features,
        cfg.use_noise,
    )


def d_schema_of(cfg) -> Schema:
    """:func:`d_schema` of a `DiscriminatorConfig`."""
    return d_schema(
        cfg.resolution,
        cfg.channels,
        cfg.img_channels,
        cfg.mbstd_num_channels,
        cfg.c_dim,
        cfg.cmap_dim,
        cfg.mapping_layers,
        cfg.architecture,
        cfg.embed_features,
        cfg.layer_features,
    )


def _g_shapes(cfg: dict) -> Schema:
    return g_schema(
        cfg['resolution'],
        cfg['g_channels'],
        cfg['img_channels'],
        cfg['z_dim'],
        cfg['w_dim'],
        cfg['c_dim'],
        cfg['embed_features'],
        cfg['mapping_layers'],
        cfg.get('architecture') or 'skip',
        cfg.get('layer_features'),
        cfg.get('use_noise', True),
    )


def _d_shapes(cfg: dict) -> Schema:
    return d_schema(
        cfg['resolution'],
        cfg['d_channels'],
        cfg['img_channels'],
        cfg['mbstd_num_channels'],
        cfg['c_dim'],
        cfg['cmap_dim'] or None,
        cfg['d_mapping_layers'],
        cfg.get('d_architecture') or 'resnet',
        cfg.get('d_embed_features'),
        cfg.get('d_layer_features'),
    )


def filter_keys(schema: Schema) -> list[str]:
    """The resample-filter buffers of a schema."""
    return [k for k, shape in schema if shape is None]


def expected_shapes(config: dict) -> dict[str, dict[str, tuple | None]]:
    """``{'G': {key: shape}, 'D': {...}}`` for ``config`` (shape None for resample-filter buffers)."""
    out: dict[str, dict[str, tuple | None]] = {}
    if config.get('g_channels'):
        out['G'] = dict(_g_shapes(config))
    if config.get('d_channels'):
        out['D'] = dict(_d_shapes(config))
    return out


def _block_resolutions(res: int, ascending: bool) -> list[int]:
    rs = block_resolutions(res)
    return rs if ascending else [r for r in reversed(rs) if r > 4]


def _canonicalize(
    sd: Mapping[str, np.ndarray],
    schema: list[tuple[str, tuple | None]],
    path: str,
    label: str,
    notes: list[str],
    optional: set[str] = frozenset(),
) -> collections.OrderedDict[str, np.ndarray]:
    """Check ``sd`` against the schema; return float32 copies in state_dict order."""
    out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for key, shape in schema:
        if key not in sd:
            if key in optional:
                continue
            raise CheckpointError(
                f"{path}: {label} is missing key '{key}'" + (f' (expected shape {shape})' if shape is not None else '')
            )
        value = sd[key]
        where = key_desc(value, label, key)  # the file's own name for it
        if not _is_array(value):
            raise CheckpointError(f'{path}: {where} is {type(value).__name__}, expected a tensor')
        if shape is None:
            if np.ndim(value) != 2 or _shape(value)[0] != _shape(value)[1]:
                raise CheckpointError(f'{path}: {where} has shape {_shape(value)}, expected a square 2-D filter')
        elif _shape(value) != tuple(shape):
            raise CheckpointError(f'{path}: {where} has shape {_shape(value)}, expected {tuple(shape)}')
        out[key] = _f32(value)
    extra = [k for k in sd if k not in out and k not in optional]
    if extra:
        for k in extra:
            if _is_array(sd[k]):
                out[k] = _f32(sd[k])
        notes.append(
            f'{label}: kept {len(extra)} key(s) outside the StyleGAN2 schema: {", ".join(extra[:8])}'
            + (' ...' if len(extra) > 8 else '')
        )
    return out


# --------------------------------------------------------------------------------------------
# config inference (from NVlabs-named state dicts)
