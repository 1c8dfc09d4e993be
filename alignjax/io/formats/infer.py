"""The architecture and config of a checkpoint inferred back from its tensors (NVlabs names), checked against
what the file declares, and :func:`finish`, where every reader ends: infer the config, check each network
against its schema (`alignjax.io.formats.schema`) once, and return the :class:`RawCheckpoint`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from alignjax.errors import CheckpointError
from alignjax.io.formats.common import (
    DEFAULT_MAPPING_LR_MUL,
    NET_NAMES,
    RawCheckpoint,
    UnsupportedNetwork,
    _indices,
    _shape,
    _Src,
    key_desc,
)
from alignjax.io.formats.schema import _block_resolutions, _canonicalize, _d_shapes, _g_shapes
from alignjax.nn.arch import (
    D_ARCHITECTURES,
    DEFAULT_RESAMPLE_FILTER,
    G_ARCHITECTURES,
)


def _declared(
    arch: str,
    declared: str | None,
    ambiguous: tuple[str, ...],
    known: tuple[str, ...],
    path: str,
    label: str,
    which: str,
) -> str:
    """The architecture the tensors show (`arch`), checked against the one the file's kwargs declare; where
    the tensors cannot tell (`ambiguous`: architectures with identical tensors), the declared one."""
    if declared is None:
        return arch
    if declared not in known:
        raise UnsupportedNetwork(
            f'{path}: {label} declares the {which} architecture {declared!r}, which is not '
            f'supported (NVlabs has {", ".join(known)})',
            label,
        )
    if declared != arch and not (arch in ambiguous and declared in ambiguous):
        raise CheckpointError(
            f'{path}: {label} declares architecture {declared!r} but its tensors are those of a {arch!r} {which}'
        )
    return declared


def _filter_taps(sd: Mapping[str, np.ndarray], key: str, path: str, label: str) -> tuple[float, ...]:
    """The 1-D resample filter (NVlabs `resample_filter`) a network's 2-D filter buffers were made from: NVlabs
    stores outer(f, f) / sum(f)**2, so each row sum is f / sum(f); returned as the smallest integer taps where
    they are integers (e.g. (1, 3, 3, 1)), read from `key` (a block's filter: the one its resampling layers
    use too). Without that buffer, or with one that is not an array: the default (the schema check reports it)."""
    if key not in sd or not hasattr(sd[key], 'shape'):
        return DEFAULT_RESAMPLE_FILTER
    f2 = np.asarray(sd[key], np.float64)
    where = key_desc(sd[key], label, key)  # the file's own name for it
    if f2.ndim != 2 or f2.shape[0] != f2.shape[1] or not np.all(np.isfinite(f2)) or abs(f2.sum() - 1) > 1e-4:
        raise CheckpointError(
            f'{path}: {where} (shape {f2.shape}, sum {f2.sum():.4g}) is not a normalised square 2-D resample filter'
        )
    f1 = f2.sum(axis=1)
    if not np.allclose(np.outer(f1, f1), f2, atol=1e-6):
        raise CheckpointError(
            f'{path}: {where} is a non-separable resample filter, which is not supported '
            '(NVlabs builds them separable from 1-D taps)'
        )
    small = np.abs(f1[np.abs(f1) > 1e-6]).min()
    ints = f1 / small
    if np.allclose(ints, np.round(ints), atol=1e-4):
        return tuple(int(v) for v in np.round(ints))
    return tuple(float(v) for v in f1)


def _infer_g(sd: Mapping[str, np.ndarray], path: str, label: str, declared: str | None = None) -> dict:
    keys = list(sd)
    if any(k.startswith('synthesis.input.') or re.match(r'synthesis\.L\d+_', k) for k in keys):
        raise UnsupportedNetwork(
            f'{path}: {label} is a StyleGAN3 generator, which is not supported (StyleGAN2 only)', label
        )
    src = _Src(sd, path, label)
    rs = _indices(keys, r'synthesis\.b(\d+)\..*')
    if not rs:
        src.get('synthesis.b4.const')  # raises: missing key
    res = max(rs)
    if res < 4 or res & (res - 1) or rs != _block_resolutions(res, ascending=True):
        raise CheckpointError(f'{path}: {label} has synthesis blocks {rs}, expected 4, 8, ..., {res}')
    # skip: a ToRGB per block; orig: in the last block only; resnet: as orig, plus a skip conv above 4x4
    torgb = [r for r in rs if f'synthesis.b{r}.torgb.weight' in sd]
    skips = [r for r in rs if f'synthesis.b{r}.skip.weight' in sd]
    if torgb == rs and not skips:
        arch = 'skip'
    elif torgb == [res] and skips in ([], rs[1:]):
        arch = 'resnet' if skips else 'orig'
    else:
        raise CheckpointError(
            f'{path}: {label} has ToRGB layers in blocks {torgb} and skip convs in {skips}: '
            f"not an NVlabs 'orig', 'skip' or 'resnet' generator"
        )
    arch = _declared(
        arch, declared, ('orig', 'skip', 'resnet') if res == 4 else (), G_ARCHITECTURES, path, label, 'generator'
    )
    img_channels = _shape(src.get(f'synthesis.b{res}.torgb.weight'))[0]
    g_channels = {r: _shape(src.get(f'synthesis.b{r}.conv1.weight'))[0] for r in rs}
    w_dim = _shape(src.get('synthesis.b4.conv1.affine.weight'))[1]
    fcs = _indices(keys, r'mapping\.fc(\d+)\.weight')
    if fcs != list(range(len(fcs))) or not fcs:
        raise CheckpointError(f'{path}: {label} mapping layers {fcs} are not fc0..fc(N-1)')
    c_dim, embed = 0, None
    if 'mapping.embed.weight' in sd:
        embed, c_dim = _shape(src.get('mapping.embed.weight'))
    fc0_in = _shape(src.get('mapping.fc0.weight'))[1]
    z_dim = fc0_in - (embed or 0)
    n_conv = sum(1 for r in rs for n in ('conv0', 'conv1') if f'synthesis.b{r}.{n}.weight' in sd)
    hidden = _shape(src.get('mapping.fc0.weight'))[0] if len(fcs) > 1 else w_dim
    noise = any(k.rsplit('.', 1)[-1] in ('noise_strength', 'noise_const') for k in keys)
    filt = _filter_taps(sd, 'synthesis.b4.resample_filter', path, label)
    # NVlabs options, present only where they are not the defaults (mapping layer_features = w_dim,
    # use_noise=True, resample_filter [1, 3, 3, 1])
    options = (
        ({'layer_features': hidden} if hidden != w_dim else {})
        | ({} if noise else {'use_noise': False})
        | ({'resample_filter': filt} if filt != DEFAULT_RESAMPLE_FILTER else {})
    )
    return options | dict(
        resolution=res,
        img_channels=img_channels,
        z_dim=z_dim,
        w_dim=w_dim,
        c_dim=c_dim,
        num_ws=n_conv + 1,
        mapping_layers=len(fcs),
        embed_features=embed,
        g_channels=g_channels,
        architecture=arch,
    )


def _infer_d(sd: Mapping[str, np.ndarray], path: str, label: str, declared: str | None = None) -> dict:
    keys = list(sd)
    src = _Src(sd, path, label)
    rs = _indices(keys, r'b(\d+)\..*')
    if not rs or 4 not in rs:
        src.get('b4.conv.weight')  # raises
    res = max(rs)
    if res & (res - 1) or rs != _block_resolutions(res, ascending=True):
        raise CheckpointError(f'{path}: {label} has blocks {rs}, expected 4, 8, ..., {res}')
    upper = [r for r in rs if r > 4]
    # skip: a FromRGB per block and in the epilogue; orig / resnet: in the first block only (resnet: + skips)
    fromrgb = [r for r in rs if f'b{r}.fromrgb.weight' in sd]
    skip = [r for r in upper if f'b{r}.skip.weight' in sd]
    if fromrgb == sorted(rs) and not skip:
        arch = 'skip'
    elif fromrgb == [res] and skip in ([], upper):
        arch = 'resnet' if skip else 'orig'
    else:
        raise CheckpointError(
            f'{path}: {label} has FromRGB layers in blocks {fromrgb} and skip convs in {skip}: '
            "not an NVlabs 'orig', 'skip' or 'resnet' discriminator"
        )
    arch = _declared(arch, declared, (), D_ARCHITECTURES, path, label, 'discriminator')
    d_channels = {r: _shape(src.get(f'b{r}.conv0.weight'))[0] for r in upper}
    conv4 = _shape(src.get('b4.conv.weight'))
    d_channels[4] = conv4[0]
    d_channels = dict(sorted(d_channels.items()))
    img_channels = _shape(src.get(f'b{res}.fromrgb.weight'))[1]
    c_dim, cmap = 0, 0
    if 'mapping.embed.weight' in sd:
        c_dim = _shape(src.get('mapping.embed.weight'))[1]
        cmap = _shape(src.get('b4.out.weight'))[0]
    fcs = _indices(keys, r'mapping\.fc(\d+)\.weight')
    options = {}
    if c_dim:  # the label mapping's widths where they are not cmap_dim (NVlabs mapping_kwargs apply to D too)
        embed = _shape(src.get('mapping.embed.weight'))[0]
        hidden = _shape(src.get('mapping.fc0.weight'))[0] if len(fcs) > 1 else cmap
        options = ({'d_embed_features': embed} if embed != cmap else {}) | (
            {'d_layer_features': hidden} if hidden != cmap else {}
        )
    filt = _filter_taps(sd, f'b{res}.resample_filter', path, label)
    if filt != DEFAULT_RESAMPLE_FILTER:
        options['d_resample_filter'] = filt
    return options | dict(
        resolution=res,
        img_channels=img_channels,
        c_dim=c_dim,
        d_channels=d_channels,
        mbstd_num_channels=conv4[1] - d_channels[4],
        cmap_dim=cmap,
        d_mapping_layers=len(fcs) if c_dim else 0,
        d_architecture=arch,
    )


def infer_config(
    nets: Mapping[str, Mapping[str, np.ndarray]], *, path: str = '<checkpoint>', hints: Mapping[str, Any] | None = None
) -> dict:
    """Infer the architecture config from NVlabs-named state dicts.

    ``hints`` supplies what tensors cannot tell (``mbstd_group_size``, ``conv_clamp`` (G's), ``d_conv_clamp``,
    ``mapping_lr_mul``, ``d_mapping_lr_mul``, ``channel_base``, ``channel_max``); they are merged in afterwards.
    ``d_conv_clamp`` appears in the result only where it differs from ``conv_clamp``. ``d_mapping_layers`` is
    what the tensors show: 0 for a conditional D that only embeds its labels (TF-ADA's default).
    """
    hints = dict(hints or {})
    g_arch, d_arch = hints.pop('architecture', None), hints.pop('d_architecture', None)
    g_label = next((n for n in ('G_ema', 'G') if n in nets), None)
    cfg: dict[str, Any] = {}
    g_cfgs = {n: _infer_g(nets[n], path, n, g_arch) for n in ('G_ema', 'G') if n in nets}
    if len(g_cfgs) == 2 and g_cfgs['G'] != g_cfgs['G_ema']:
        raise CheckpointError(f'{path}: G and G_ema have different architectures: {g_cfgs["G"]} vs {g_cfgs["G_ema"]}')
    if g_label:
        cfg.update(g_cfgs[g_label])
    d_cfg = _infer_d(nets['D'], path, 'D', d_arch) if 'D' in nets else None
    if d_cfg is not None:
        if g_label:
            for k in ('resolution', 'img_channels', 'c_dim'):
                if d_cfg[k] != cfg[k]:
                    raise CheckpointError(f'{path}: D has {k}={d_cfg[k]} but {g_label} has {k}={cfg[k]}')
        else:
            cfg.update(
                resolution=d_cfg['resolution'],
                img_channels=d_cfg['img_channels'],
                c_dim=d_cfg['c_dim'],
                z_dim=None,
                w_dim=None,
                num_ws=None,
                mapping_layers=None,
                embed_features=None,
                g_channels=None,
                architecture=None,
            )
        cfg.update(
            {
                k: d_cfg[k]
                for k in ('d_channels', 'mbstd_num_channels', 'cmap_dim', 'd_mapping_layers', 'd_architecture')
            }
        )
        cfg.update({k: v for k, v in d_cfg.items() if k.startswith(('d_embed', 'd_layer', 'd_resample'))})
    else:
        cfg.update(d_channels=None, mbstd_num_channels=None, cmap_dim=None, d_mapping_layers=None, d_architecture=None)
    if not g_label and d_cfg is None:
        raise CheckpointError(f'{path}: no networks (G, G_ema, D) found')
    cfg['mbstd_group_size'] = hints.pop('mbstd_group_size', None) if d_cfg is not None else None
    if d_cfg is not None and cfg['mbstd_num_channels'] == 0:
        cfg['mbstd_group_size'] = None
    cfg['conv_clamp'] = hints.pop('conv_clamp', None)
    d_clamp = hints.pop('d_conv_clamp', cfg['conv_clamp'])
    if not g_label:
        cfg['conv_clamp'] = d_clamp
    elif d_cfg is not None and d_clamp != cfg['conv_clamp']:
        cfg['d_conv_clamp'] = d_clamp  # D's own clamp, where it is not G's (also None: D unclamped)
    cfg['mapping_lr_mul'] = hints.pop('mapping_lr_mul', DEFAULT_MAPPING_LR_MUL)
    for k, v in hints.items():
        if v is not None:
            cfg[k] = v
    order = [
        'resolution',
        'img_channels',
        'z_dim',
        'w_dim',
        'c_dim',
        'num_ws',
        'mapping_layers',
        'embed_features',
        'g_channels',
        'd_channels',
        'mbstd_group_size',
        'mbstd_num_channels',
        'cmap_dim',
        'd_mapping_layers',
        'architecture',
        'd_architecture',
        'conv_clamp',
        'mapping_lr_mul',
    ]
    return {k: cfg[k] for k in order} | {k: v for k, v in cfg.items() if k not in order}


def finish(
    nets: dict[str, Mapping[str, np.ndarray]],
    *,
    path: str,
    fmt: str,
    hints: dict,
    notes: list[str],
    extra: dict,
    unsupported: Mapping[str, UnsupportedNetwork] | None = None,
) -> RawCheckpoint:
    """Infer the config, check every network against its schema, return the RawCheckpoint. A network the
    reader found unsupported (`unsupported`) or whose inference raises `UnsupportedNetwork` is left out, with a
    note (``skipped``); if that leaves no generator of a file that had one, the generator's error is raised."""
    if not nets and not unsupported:
        raise CheckpointError(f'{path}: no networks (G, G_ema, D) found')
    nets, skipped = dict(nets), dict(unsupported or {})
    for name in skipped:
        nets.pop(name, None)
    while True:
        gens = [n for n in ('G_ema', 'G') if n in skipped]
        if gens and not any(n in nets for n in ('G', 'G_ema')):
            raise skipped[gens[0]]
        if not nets:
            raise next(iter(skipped.values()))
        try:
            config = infer_config(nets, path=path, hints=dict(hints))
            break
        except UnsupportedNetwork as e:
            if e.net not in nets:
                raise
            skipped[e.net] = e
            del nets[e.net]
    for name, e in skipped.items():
        notes.append(f'{name} not loaded: {e}')
    schema_g = _g_shapes(config) if config.get('g_channels') else None
    schema_d = _d_shapes(config) if config.get('d_channels') else None
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in NET_NAMES:
        if name not in nets:
            continue
        schema = schema_d if name == 'D' else schema_g
        optional = {'mapping.w_avg'} if name != 'D' else set()
        out[name] = _canonicalize(nets[name], schema, path, name, notes, optional)
    if any(n in out and 'mapping.w_avg' not in out[n] for n in ('G', 'G_ema')):
        if not any('latent_avg absent' in n or 'w_avg absent' in n for n in notes):
            notes.append('mapping.w_avg absent: compute it as the mean of mapping(z) over 10,000 random z')
    return RawCheckpoint(
        nets=out,
        config=config,
        notes=notes,
        format=fmt,
        extra=extra,
        path=path,
        skipped={n: str(e) for n, e in skipped.items()},
    )
