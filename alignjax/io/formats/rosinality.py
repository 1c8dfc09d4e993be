"""rosinality stylegan2-pytorch checkpoints ``{g_ema, g, d, latent_avg, args}`` (``torch.save``): read and write.

The name maps are derived from the architecture table (`alignjax.nn.arch`): the 4x4 block is ``conv1`` /
``to_rgb1``, block ``b{r}`` (k = log2(r) - 3) holds ``convs.{2k}`` (conv0), ``convs.{2k+1}`` (conv1) and
``to_rgbs.{k}``; noise maps are ``noises.noise_{noise_index}``; D blocks are ``convs.1..N`` (fromrgb ``convs.0``).
"""

from __future__ import annotations

import collections
import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from alignjax.errors import CheckpointError
from alignjax.io.formats.common import (
    ANY_CHANNELS,
    DEFAULT_MAPPING_LR_MUL,
    NET_NAMES,
    RawCheckpoint,
    _f32,
    _indices,
    _is_array,
    _plain,
    _shape,
    _Src,
    default_resample_filter,
    tag,
)
from alignjax.io.formats.infer import finish, infer_config
from alignjax.io.formats.schema import d_schema, filter_keys, g_schema
from alignjax.io.safe_pickle import ARGPARSE_GLOBALS, BASE_GLOBALS
from alignjax.io.torch_file import load_torch
from alignjax.io.torch_pickle import TORCH_GLOBALS
from alignjax.io.torch_save import save_torch
from alignjax.nn.arch import LayerSpec, block_resolutions, discriminator_table, synthesis_table

ROSINALITY_MBSTD_GROUP = 4
ROSINALITY_MBSTD_CHANNELS = 1
# what a rosinality checkpoint may reference (args is an argparse.Namespace)
ROSINALITY_GLOBALS: dict[tuple[str, str], Any] = {**BASE_GLOBALS, **TORCH_GLOBALS, **ARGPARSE_GLOBALS}


def _ros_g_names(res: int) -> list[tuple[str, str, LayerSpec]]:
    """(nvlabs layer prefix, rosinality layer prefix, spec) of every modulated layer in rosinality's state_dict
    order: conv1, to_rgb1, convs.*, to_rgbs.*."""
    specs = synthesis_table(res, ANY_CHANNELS, 0)

    def ros(s: LayerSpec) -> str:
        if s.res == 4:
            return 'conv1' if s.kind == 'conv' else 'to_rgb1'
        return f'convs.{s.noise_index - 1}' if s.kind == 'conv' else f'to_rgbs.{int(math.log2(s.res)) - 3}'

    named = [(f'synthesis.{s.name}', ros(s), s) for s in specs]
    return (
        [n for n in named if n[2].res == 4]
        + [n for n in named if n[2].res > 4 and n[2].kind == 'conv']
        + [n for n in named if n[2].res > 4 and n[2].kind == 'torgb']
    )


def _ros_g_to_nvlabs(sd: Mapping[str, Any], path: str, label: str, latent_avg: np.ndarray | None) -> dict:
    src = _Src(sd, path, label)
    # indices from any key of a layer, so that a missing tensor is reported as missing (not its siblings as extra)
    rgbs = _indices(sd, r'to_rgbs\.(\d+)\..+')
    res = 2 ** (max(rgbs, default=-1) + 3)
    layers = _indices(sd, r'style\.(\d+)\..+')
    if not layers or max(layers) > 64:
        raise CheckpointError(f'{path}: {label} mapping layers style.{layers} are not style.1..style.N')
    layers = list(range(1, max(layers) + 1))
    out: dict[str, np.ndarray] = {}
    for i in layers:
        out[f'mapping.fc{i - 1}.weight'] = src.get(f'style.{i}.weight')
        out[f'mapping.fc{i - 1}.bias'] = src.get(f'style.{i}.bias')
    if latent_avg is not None:
        out['mapping.w_avg'] = tag(latent_avg, None, 'latent_avg').reshape(-1)
    const = src.get('input.input')
    if const.ndim != 4 or const.shape[0] != 1:
        raise CheckpointError(f"{path}: {label} key 'input.input' has shape {_shape(const)}, expected (1, C, 4, 4)")
    out['synthesis.b4.const'] = const[0]
    up_filters: list[np.ndarray] = []
    for nv, ro, spec in _ros_g_names(res):
        w = src.get(f'{ro}.conv.weight')
        if w.ndim != 5 or w.shape[0] != 1:
            raise CheckpointError(
                f"{path}: {label} key '{ro}.conv.weight' has shape {_shape(w)}, expected (1, O, I, k, k)"
            )
        out[f'{nv}.weight'] = w[0]
        out[f'{nv}.affine.weight'] = src.get(f'{ro}.conv.modulation.weight')
        out[f'{nv}.affine.bias'] = src.get(f'{ro}.conv.modulation.bias')
        r = spec.res
        if spec.kind == 'torgb':
            b = src.get(f'{ro}.bias')
            out[f'{nv}.bias'] = b.reshape(-1)
            if src.has(f'{ro}.upsample.kernel'):
                # rosinality's Upsample kernel is the normalised filter times factor**2
                f = src.get(f'{ro}.upsample.kernel') / 4.0
                out[f'synthesis.b{r}.resample_filter'] = f
                up_filters.append(f)
            continue
        out[f'{nv}.bias'] = src.get(f'{ro}.activate.bias')
        out[f'{nv}.noise_strength'] = src.get(f'{ro}.noise.weight').reshape(())
        j = spec.noise_index
        noise = src.get(f'noises.noise_{j}')
        if noise.ndim != 4 or noise.shape[:2] != (1, 1):
            raise CheckpointError(
                f"{path}: {label} key 'noises.noise_{j}' has shape {_shape(noise)}, expected (1, 1, {r}, {r})"
            )
        out[f'{nv}.noise_const'] = noise[0, 0]
        if src.has(f'{ro}.conv.blur.kernel'):
            f = src.get(f'{ro}.conv.blur.kernel') / 4.0  # Blur(upsample_factor=2) scales by 4
            out[f'{nv}.resample_filter'] = f
            up_filters.append(f)
    default = up_filters[0] if up_filters else default_resample_filter()
    for key in filter_keys(g_schema(res, ANY_CHANNELS, 0, 0, 0, 0, None, 0)):
        out.setdefault(key, default)
    unused = src.unused()
    if unused:
        raise CheckpointError(f'{path}: {label} has keys that do not belong to a StyleGAN2 generator: {unused[:8]}')
    return out


# rosinality's D module names: (NVlabs layer, its tensors) -> rosinality (sub)keys
_ROS_D_LAYER = {
    'fromrgb': (('weight', '0.weight'), ('bias', '1.bias')),
    'conv0': (('weight', 'conv1.0.weight'), ('bias', 'conv1.1.bias')),
    'conv1': (('resample_filter', 'conv2.0.kernel'), ('weight', 'conv2.1.weight'), ('bias', 'conv2.2.bias')),
    'skip': (('resample_filter', 'skip.0.kernel'), ('weight', 'skip.1.weight')),
    'conv': (('weight', 'final_conv.0.weight'), ('bias', 'final_conv.1.bias')),
    'fc': (('weight', 'final_linear.0.weight'), ('bias', 'final_linear.0.bias')),
    'out': (('weight', 'final_linear.1.weight'), ('bias', 'final_linear.1.bias')),
}


def _ros_d_names(res: int) -> list[tuple[str, str]]:
    """(nvlabs key, rosinality key) of every tensor rosinality's D stores, in its state_dict order: the layers of
    `discriminator_table`, block b{res} as convs.1 (its fromrgb as convs.0), b{res/2} as convs.2, ..."""
    names = []
    blocks = [r for r in block_resolutions(res)[::-1] if r > 4]
    for s in discriminator_table(res, ANY_CHANNELS, 0):
        k = blocks.index(s.res) + 1 if s.res > 4 else None
        prefix = '' if k is None else 'convs.0.' if s.layer == 'fromrgb' else f'convs.{k}.'
        names += [(f'{s.name}.{nv}', prefix + ro) for nv, ro in _ROS_D_LAYER[s.layer]]
    return names


def _ros_d_to_nvlabs(sd: Mapping[str, Any], path: str, label: str) -> dict:
    src = _Src(sd, path, label)
    ks = [k for k in _indices(sd, r'convs\.(\d+)\..+') if k > 0]  # convs.0 is fromrgb
    if not ks or max(ks) > 16:
        raise CheckpointError(f'{path}: {label} residual blocks convs.{ks} are not convs.1..convs.N')
    res = 2 ** (max(ks) + 2)  # a missing block's keys are then reported as missing
    out = {nv: src.get(ro) for nv, ro in _ros_d_names(res)}
    # rosinality stores the down filters of conv1 and skip only; the others are the same filter in NVlabs' D
    default = out[f'b{res}.conv1.resample_filter']
    for key in filter_keys(d_schema(res, ANY_CHANNELS, 0)):
        out.setdefault(key, default)
    unused = src.unused()
    if unused:
        raise CheckpointError(f'{path}: {label} has keys that do not belong to a StyleGAN2 discriminator: {unused[:8]}')
    return out


def _w_dim(sd: Mapping[str, np.ndarray]) -> int | None:
    """What the last mapping layer gives (the hidden layers may be wider); None without mapping layers."""
    fcs = _indices(list(sd), r'mapping\.fc(\d+)\.weight')
    return _shape(sd[f'mapping.fc{max(fcs)}.weight'])[0] if fcs else None


def read_rosinality_pt(path: str | os.PathLike) -> RawCheckpoint:
    """rosinality/stylegan2-pytorch checkpoint (``{'g_ema', 'g', 'd', 'latent_avg', 'args', ...}``)."""
    path = os.fspath(path)
    data = load_torch(path, ROSINALITY_GLOBALS)
    if not isinstance(data, dict) or not any(k in data for k in ('g_ema', 'g', 'd')):
        raise CheckpointError(f'{path}: not a rosinality checkpoint (expected a dict with g_ema / g / d)')
    notes: list[str] = []
    extra: dict[str, Any] = {}
    latent_avg = data.get('latent_avg')
    if latent_avg is not None and not _is_array(latent_avg):
        raise CheckpointError(f"{path}: 'latent_avg' is {type(latent_avg).__name__}, expected a tensor")
    nets: dict[str, dict] = {}
    for ros, nv in (('g', 'G'), ('g_ema', 'G_ema')):
        if data.get(ros) is not None:
            if not isinstance(data[ros], dict):
                raise CheckpointError(f"{path}: '{ros}' is {type(data[ros]).__name__}, expected a state dict")
            nets[nv] = _ros_g_to_nvlabs(data[ros], path, ros, latent_avg)
    if data.get('d') is not None:
        if not isinstance(data['d'], dict):
            raise CheckpointError(f"{path}: 'd' is {type(data['d']).__name__}, expected a state dict")
        nets['D'] = _ros_d_to_nvlabs(data['d'], path, 'd')
    if latent_avg is not None:
        w = next((_w_dim(nets[n]) for n in ('G_ema', 'G') if n in nets), None)
        if w is not None and _shape(latent_avg) not in ((w,), (1, w)):
            raise CheckpointError(f"{path}: 'latent_avg' has shape {_shape(latent_avg)}, expected ({w},)")
    elif 'G' in nets or 'G_ema' in nets:
        notes.append(
            'latent_avg absent: mapping.w_avg left out; compute it as the mean of mapping(z) over 10,000 random z'
        )
    for ros, nv in (('g', 'G'), ('g_ema', 'G_ema'), ('d', 'D')):
        if ros not in data:
            notes.append(f'{ros} ({nv}) absent from the checkpoint')
    hints: dict[str, Any] = {}
    args = data.get('args')
    lr = getattr(args, 'lr_mlp', None) if args is not None else None
    if lr is not None:
        hints['mapping_lr_mul'] = float(lr)
    elif 'G' in nets or 'G_ema' in nets:
        notes.append(f"mapping lr multiplier not stored; assuming rosinality's default lr_mlp={DEFAULT_MAPPING_LR_MUL}")
    if 'D' in nets:
        hints['mbstd_group_size'] = ROSINALITY_MBSTD_GROUP
    if args is not None:
        extra['args'] = _plain(dict(vars(args)))
    if data.get('ada_aug_p') is not None:
        try:
            extra['augment_p'] = float(np.asarray(data['ada_aug_p']).reshape(-1)[0])
        except (TypeError, ValueError):
            pass
    return finish(nets, path=path, fmt='rosinality', hints=hints, notes=notes, extra=extra)


# ---- export


def _filter_or_default(sd: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    return _f32(sd[key]) if key in sd else default_resample_filter()


def _nvlabs_g_to_ros(sd: Mapping[str, np.ndarray], cfg: dict, path: str, label: str) -> collections.OrderedDict:
    src = _Src(sd, path, label)
    res = cfg['resolution']
    out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for i in range(cfg['mapping_layers']):
        out[f'style.{i + 1}.weight'] = src.get(f'mapping.fc{i}.weight')
        out[f'style.{i + 1}.bias'] = src.get(f'mapping.fc{i}.bias')
    out['input.input'] = src.get('synthesis.b4.const')[None]

    def conv(nv: str, ro: str, r: int, up: bool) -> None:
        out[f'{ro}.conv.weight'] = src.get(f'{nv}.weight')[None]
        if up:
            out[f'{ro}.conv.blur.kernel'] = _filter_or_default(sd, f'{nv}.resample_filter') * 4.0
        out[f'{ro}.conv.modulation.weight'] = src.get(f'{nv}.affine.weight')
        out[f'{ro}.conv.modulation.bias'] = src.get(f'{nv}.affine.bias')
        # use_noise=False: rosinality always adds noise; a zero strength makes that add exactly nothing
        strength = src.get(f'{nv}.noise_strength') if cfg.get('use_noise', True) else np.zeros((), np.float32)
        out[f'{ro}.noise.weight'] = strength.reshape(1)
        out[f'{ro}.activate.bias'] = src.get(f'{nv}.bias')

    def torgb(nv: str, ro: str, r: int, up: bool) -> None:
        out[f'{ro}.bias'] = src.get(f'{nv}.bias').reshape(1, -1, 1, 1)
        if up:
            out[f'{ro}.upsample.kernel'] = _filter_or_default(sd, f'synthesis.b{r}.resample_filter') * 4.0
        out[f'{ro}.conv.weight'] = src.get(f'{nv}.weight')[None]
        out[f'{ro}.conv.modulation.weight'] = src.get(f'{nv}.affine.weight')
        out[f'{ro}.conv.modulation.bias'] = src.get(f'{nv}.affine.bias')

    for nv, ro, spec in _ros_g_names(res):
        if spec.kind == 'torgb':
            torgb(nv, ro, spec.res, up=spec.res > 4)
        else:
            conv(nv, ro, spec.res, up=spec.up > 1)
    for spec in synthesis_table(res, ANY_CHANNELS, 0):
        if spec.kind == 'conv':
            noise = (
                src.get(f'synthesis.{spec.name}.noise_const')
                if cfg.get('use_noise', True)
                else np.zeros((spec.res, spec.res), np.float32)
            )
            out[f'noises.noise_{spec.noise_index}'] = noise[None, None]
    # keep rosinality's order: noises sorted by index at the end
    noise_keys = sorted((k for k in out if k.startswith('noises.')), key=lambda k: int(k.rsplit('_', 1)[1]))
    for k in noise_keys:
        out.move_to_end(k)
    return collections.OrderedDict((k, _f32(v)) for k, v in out.items())


def _nvlabs_d_to_ros(sd: Mapping[str, np.ndarray], cfg: dict, path: str) -> collections.OrderedDict:
    src = _Src(sd, path, 'D')
    return collections.OrderedDict(
        (ro, _filter_or_default(sd, nv) if nv.endswith('resample_filter') else _f32(src.get(nv)))
        for nv, ro in _ros_d_names(cfg['resolution'])
    )


def write_rosinality_pt(
    path: str | os.PathLike, nets: Mapping[str, Mapping[str, np.ndarray]], config: dict
) -> list[str]:
    """Export NVlabs-named state dicts (any of G, G_ema, D) as a rosinality checkpoint
    ``{'g_ema', 'g', 'd', 'latent_avg'}`` (only the parts present), readable by
    ``torch.load(path, weights_only=True)`` and by :func:`read_rosinality_pt`.

    ``latent_avg`` is G_ema's ``mapping.w_avg`` (else G's); it is omitted when neither has one.  The
    format has a single ``latent_avg``, so a G whose ``w_avg`` differs from G_ema's loses it; everything else
    round-trips exactly through :func:`read_rosinality_pt`. What rosinality's networks compute differently
    (``config``: ``mbstd_group_size`` other than 4, ``mapping_lr_mul`` other than 0.01, ``conv_clamp`` /
    ``d_conv_clamp`` set) is returned as notes, each also a ``UserWarning``.
    """
    path = os.fspath(path)
    nets = {k: v for k, v in nets.items() if v is not None}
    unknown = [k for k in nets if k not in NET_NAMES]
    if unknown:
        raise CheckpointError(f'{path}: unknown network name(s) {unknown}; expected G, G_ema, D')
    cfg = infer_config(nets, path=path, hints={'mbstd_group_size': config.get('mbstd_group_size')})
    for k in ('resolution', 'z_dim', 'w_dim', 'mapping_layers', 'mbstd_num_channels'):
        if config.get(k) is not None and cfg.get(k) is not None and int(config[k]) != int(cfg[k]):
            raise CheckpointError(f'{path}: config says {k}={config[k]} but the tensors say {cfg[k]}')
    for k in ('g_channels', 'd_channels'):
        given, found = config.get(k), cfg.get(k)
        if isinstance(given, Mapping) and isinstance(found, Mapping):
            given = {int(r): int(c) for r, c in given.items()}
            clash = {r: (given[r], found[r]) for r in found if r in given and given[r] != found[r]}
            if clash:
                raise CheckpointError(f'{path}: config {k} disagrees with the tensors at {clash} (config, tensors)')
    if cfg.get('c_dim'):
        raise CheckpointError(
            f'{path}: conditional networks (c_dim={cfg["c_dim"]}) cannot be expressed in the rosinality format'
        )
    for k, want in (('architecture', 'skip'), ('d_architecture', 'resnet')):
        for have in (cfg.get(k), config.get(k)):  # the tensors' architecture and the one the caller declares
            if have not in (None, want):
                raise CheckpointError(
                    f"{path}: rosinality's {'D' if k[0] == 'd' else 'G'} is {want!r}; this one is "
                    f'{have!r} (rosinality has no other architecture)'
                )
    has_g = 'G' in nets or 'G_ema' in nets
    notes: list[str] = []
    if has_g and (cfg.get('layer_features') or cfg['z_dim'] != cfg['w_dim']):
        notes.append(
            f"rosinality's mapping network is style_dim wide throughout; this one maps z_dim={cfg['z_dim']} "
            f'through {cfg.get("layer_features") or cfg["w_dim"]} hidden features to w_dim={cfg["w_dim"]}: '
            "rosinality's Generator cannot load it (alignjax reads it back)"
        )
    if has_g and not cfg.get('use_noise', True):
        notes.append(
            'this generator has no noise inputs (use_noise=False); rosinality always adds noise, so it is '
            'written with noise strength 0 (the images are unchanged; training the export would learn noise)'
        )
    for k, which, present in (
        ('resample_filter', 'Generator', has_g),
        ('d_resample_filter', 'Discriminator', 'D' in nets),
    ):
        if present and cfg.get(k):
            notes.append(
                f"resample filter {list(cfg[k])} is not the default [1, 3, 3, 1]: build rosinality's "
                f'{which} with blur_kernel={list(cfg[k])} to load it'
            )
    if 'D' in nets:
        if cfg['mbstd_num_channels'] != ROSINALITY_MBSTD_CHANNELS:
            raise CheckpointError(
                f"{path}: rosinality's discriminator has {ROSINALITY_MBSTD_CHANNELS} minibatch-std channel; "
                f'this D has {cfg["mbstd_num_channels"]}'
            )
        group = config.get('mbstd_group_size', ROSINALITY_MBSTD_GROUP)
        if group != ROSINALITY_MBSTD_GROUP:
            notes.append(
                f"rosinality's discriminator uses minibatch-std group {ROSINALITY_MBSTD_GROUP}; this D uses "
                f'{"the whole batch" if group is None else group}: its logits differ for batches over '
                f'{min(group, ROSINALITY_MBSTD_GROUP) if group else ROSINALITY_MBSTD_GROUP}'
            )
    lr = config.get('mapping_lr_mul', DEFAULT_MAPPING_LR_MUL)
    if lr is not None and not math.isclose(float(lr), DEFAULT_MAPPING_LR_MUL) and has_g:
        notes.append(
            f"mapping lr multiplier {lr} differs from rosinality's default {DEFAULT_MAPPING_LR_MUL}; "
            'pass --lr_mlp accordingly when using the export'
        )
    d_clamp = config['d_conv_clamp'] if 'd_conv_clamp' in config else config.get('conv_clamp')
    for clamp, which, present in (
        (config.get('conv_clamp'), 'generator', has_g),
        (d_clamp, 'discriminator', 'D' in nets),
    ):
        if present and clamp is not None:
            notes.append(
                f"this {which} clamps its activations (conv_clamp={clamp}) and rosinality's cannot: "
                'its outputs differ wherever a clamp binds'
            )
    if all(n in nets and 'mapping.w_avg' in nets[n] for n in ('G', 'G_ema')) and not np.array_equal(
        _f32(nets['G']['mapping.w_avg']), _f32(nets['G_ema']['mapping.w_avg'])
    ):
        notes.append(
            "the rosinality format has a single latent_avg: G_ema's w_avg is written and G's "
            '(different) w_avg is dropped'
        )
    for note in notes:
        warnings.warn(f'{path}: {note}', stacklevel=2)
    ckpt: collections.OrderedDict[str, Any] = collections.OrderedDict()
    if 'G_ema' in nets:
        ckpt['g_ema'] = _nvlabs_g_to_ros(nets['G_ema'], cfg, path, 'G_ema')
    if 'G' in nets:
        ckpt['g'] = _nvlabs_g_to_ros(nets['G'], cfg, path, 'G')
    if 'D' in nets:
        ckpt['d'] = _nvlabs_d_to_ros(nets['D'], cfg, path)
    for n in ('G_ema', 'G'):
        if n in nets and 'mapping.w_avg' in nets[n]:
            ckpt['latent_avg'] = _f32(nets[n]['mapping.w_avg']).reshape(-1)
            break
    save_torch(ckpt, path)
    return notes
