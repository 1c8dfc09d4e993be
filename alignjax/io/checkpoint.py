"""Checkpoints: `Checkpoint` (G, G_ema, D with their configs) and `load_checkpoint` for every supported file.

    ck = load_checkpoint(path)     # NVlabs .pkl / rosinality .pt / TF .pkl / our orbax dir / training snapshot
    ck.generator(), ck.discriminator(), ck.save(dir), ck.export_rosinality(file)

The architecture is inferred from the tensors (`formats.infer_config`, then `configs_from_raw` finds the
channel_base / channel_max that give those channels); every key and shape is checked once, by the reader.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from alignjax.errors import CheckpointError, MissingEntryError, MissingFileError
from alignjax.io import convert, formats, store
from alignjax.io.export import export_rosinality
from alignjax.io.store import save_checkpoint
from alignjax.model import Discriminator, Generator, compute_w_avg
from alignjax.nn.arch import DEFAULT_RESAMPLE_FILTER
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig

__all__ = ['Checkpoint', 'configs_from_raw', 'load_checkpoint']


def _infer_base_max(chs: Mapping[int, int], what: str, source: str) -> tuple[int, int]:
    chs = {int(r): int(c) for r, c in chs.items()}
    cmax = max(chs.values())
    below = [r for r, c in chs.items() if c < cmax]
    base = chs[max(below)] * max(below) if below else cmax * max(chs)
    if any(min(base // r, cmax) != c for r, c in chs.items()):
        raise CheckpointError(
            f'{source}: {what} channels {dict(sorted(chs.items()))} do not follow '
            f'min(channel_base // res, channel_max) for any channel_base/channel_max'
        )
    return base, cmax


def configs_from_raw(rc: Mapping[str, Any], source: str = '?') -> tuple[GeneratorConfig, DiscriminatorConfig | None]:
    """Model configs from the tensor-inferred config dict of `alignjax.io.formats`."""
    gb, gm = (
        _infer_base_max(rc['g_channels'], 'generator', source)
        if rc.get('g_channels')
        else (rc.get('channel_base', 32768), rc.get('channel_max', 512))
    )
    g = GeneratorConfig(
        resolution=int(rc['resolution']),
        z_dim=int(rc['z_dim']),
        w_dim=int(rc['w_dim']),
        c_dim=int(rc.get('c_dim') or 0),
        img_channels=int(rc.get('img_channels', 3)),
        mapping_layers=int(rc['mapping_layers']),
        mapping_lr_mul=float(rc.get('mapping_lr_mul') or 0.01),
        embed_features=rc.get('embed_features'),
        layer_features=rc.get('layer_features'),
        channel_base=gb,
        channel_max=gm,
        conv_clamp=rc.get('conv_clamp'),
        resample_filter=rc.get('resample_filter') or DEFAULT_RESAMPLE_FILTER,
        use_noise=bool(rc.get('use_noise', True)),
        architecture=rc.get('architecture') or 'skip',
    )
    d = None
    if rc.get('d_channels'):
        db, dm = _infer_base_max(rc['d_channels'], 'discriminator', source)
        d = DiscriminatorConfig(
            resolution=g.resolution,
            img_channels=g.img_channels,
            c_dim=g.c_dim,
            channel_base=db,
            channel_max=dm,
            mbstd_group_size=rc.get('mbstd_group_size', 4),
            mbstd_num_channels=int(rc.get('mbstd_num_channels', 1)),
            cmap_dim=rc.get('cmap_dim') if g.c_dim else None,
            # a conditional D's mapping depth as the tensors show it (0: embed only, TF-ADA's
            # default); an unconditional D keeps the default (it builds no mapping)
            mapping_layers=int(rc['d_mapping_layers']) if g.c_dim and rc.get('d_mapping_layers') is not None else 8,
            mapping_lr_mul=float(rc.get('d_mapping_lr_mul') or 0.01),
            embed_features=rc.get('d_embed_features') if g.c_dim else None,
            layer_features=rc.get('d_layer_features') if g.c_dim else None,
            conv_clamp=rc.get('d_conv_clamp', rc.get('conv_clamp')),
            resample_filter=rc.get('d_resample_filter') or DEFAULT_RESAMPLE_FILTER,
            architecture=rc.get('d_architecture') or 'resnet',
        )
    return g, d


@dataclasses.dataclass
class Checkpoint:
    """A loaded checkpoint: networks 'G', 'G_ema', 'D' (whichever the file had) with their configs.

    source: where it came from (the path it was loaded from, or e.g. 'alignjax train');
    format: what it was read from: 'nvlabs' | 'rosinality' | 'tf' | 'orbax' | 'snapshot' (or '' in memory).
    skipped: {network: why} for networks of the file that could not be built and were left out (the others
    load; asking for a skipped one raises a CheckpointError saying why).
    """

    g_config: GeneratorConfig
    d_config: DiscriminatorConfig | None
    nets: dict[str, Any]  # name -> variables (numpy or jax arrays)
    source: str = ''
    format: str = ''
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def _refuse_skipped(self, which: str) -> None:
        if which in self.skipped:
            raise CheckpointError(f'{self.source}: {which} was not loaded: {self.skipped[which]}')

    def generator(self, which: str = 'G_ema') -> Generator:
        self._refuse_skipped(which)
        if which not in self.nets or which == 'D':
            have = [k for k in self.nets if k != 'D']
            raise MissingEntryError(f'{self.source}: no generator {which!r} in this checkpoint (has {have})')
        return Generator(self.g_config, jax.tree_util.tree_map(jnp.asarray, self.nets[which]))

    def discriminator(self) -> Discriminator:
        self._refuse_skipped('D')
        if 'D' not in self.nets or self.d_config is None:
            raise MissingEntryError(f'{self.source}: this checkpoint has no discriminator')
        return Discriminator(self.d_config, jax.tree_util.tree_map(jnp.asarray, self.nets['D']))

    def save(self, path) -> None:
        """Write our orbax directory format (atomically); `load_checkpoint(path)` reads it back."""
        save_checkpoint(path, self)

    def export_rosinality(self, path) -> list[str]:
        """Write a rosinality checkpoint; returns (and warns) what the format cannot express."""
        return export_rosinality(self, path)

    def export(self, path, format: str | None = None) -> list[str]:
        """Write another tool's format, from the suffix unless `format` says: .pt rosinality, .pkl the NVlabs
        TensorFlow layout (NVlabs' legacy.load_network_pkl converts it; a torch_utils pickle cannot be written
        without code), no suffix our directory. Returns what the format loses (`alignjax.io.export.export`)."""
        from alignjax.io.export import export

        return export(self, path, format)


def _nonfinite_variables(nets: Mapping[str, Any]) -> list[str]:
    out = []
    for name, variables in nets.items():
        for col, flat in ((c, convert._flat(v)) for c, v in variables.items() if isinstance(v, Mapping)):
            for k, a in flat.items():
                a = np.asarray(a)
                if np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
                    out.append(
                        f"{name} {col} '{k}': {int(a.size - np.count_nonzero(np.isfinite(a)))} of {a.size} "
                        'values are NaN/Inf'
                    )
    return out


def _refuse_nonfinite(path: str, bad: list[str], allow: bool, notes: list[str]) -> None:
    """NaN/Inf weights give NaN images: refuse them, naming each tensor as the file does (or warn when allowed).
    (A flipped bit in a .pkl / legacy .pt is only caught this way: those formats have no checksum.)"""
    if not bad:
        return
    listing = '; '.join(bad[:8]) + (f'; ... ({len(bad)} tensors)' if len(bad) > 8 else '')
    if not allow:
        raise CheckpointError(
            f'{path}: non-finite weights: {listing} (the file is corrupt or its training diverged; '
            'load_checkpoint(..., allow_nonfinite=True) loads it anyway)'
        )
    msg = f'{path}: loaded with non-finite weights (allow_nonfinite=True): {listing}'
    warnings.warn(msg, stacklevel=3)
    notes.append(msg)


def load_checkpoint(path, *, allow_nonfinite: bool = False) -> Checkpoint:
    """Load an NVlabs .pkl, rosinality .pt, NVlabs TF .pkl, our orbax directory or a training snapshot
    (`runs/x/checkpoints/<step>`), detected from content.

    Nothing in the file is executed: pickles go through an allow-list unpickler. Errors name the file and key
    (the file's own key: `convs.0.conv.weight` in a rosinality file). Tensors holding NaN/Inf are refused unless
    `allow_nonfinite=True` (then a warning and a note say which).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingFileError(f'checkpoint not found: {path}')
    fmt = formats.detect_format(path)
    if fmt in ('orbax', 'snapshot'):
        parts = store.read_store(path) if fmt == 'orbax' else store.read_snapshot(path)
        ck = Checkpoint(source=str(Path(path).absolute()), format=fmt, **parts)
        _refuse_nonfinite(path, _nonfinite_variables(ck.nets), allow_nonfinite, ck.notes)
        return ck
    raw = formats.read_raw(path, fmt)
    g_cfg, d_cfg = configs_from_raw(raw.config, path)
    nets, notes = {}, list(raw.notes)
    _refuse_nonfinite(path, raw.nonfinite(), allow_nonfinite, notes)
    for name, sd in raw.nets.items():
        cfg = d_cfg if name == 'D' else g_cfg
        if cfg is None:
            raise CheckpointError(f'{path}: found network {name} but could not infer its architecture')
        # read_raw checked every key and shape against the schema of this very architecture: convert only
        nets[name] = convert.from_nvlabs(sd, cfg, what=name, source=path, checked=True, names=raw.names.get(name))
    for name, v in nets.items():
        if name != 'D' and 'w_avg' not in v.get('buffers', {}).get('mapping', {}):
            v.setdefault('buffers', {}).setdefault('mapping', {})['w_avg'] = np.zeros(g_cfg.w_dim, np.float32)
            w_avg = compute_w_avg(Generator(g_cfg, jax.tree_util.tree_map(jnp.asarray, v)))
            v['buffers']['mapping']['w_avg'] = w_avg
            notes.append(f'{name}: the file has no w_avg; computed it as the mean of 10,000 mapped z (seed 0)')
    return Checkpoint(
        g_cfg, d_cfg, nets, source=path, format=fmt, notes=notes, extra=dict(raw.extra), skipped=dict(raw.skipped)
    )
