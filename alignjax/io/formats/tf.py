"""NVlabs TensorFlow StyleGAN2 / StyleGAN2-ADA pickles ``(G, D, Gs)`` (the official StyleAlign models).

The networks come back as :class:`TFNetwork` stand-ins (their state: variables, components, kwargs). Names
are derived from the architecture table: ``{r}x{r}/Conv0_up`` (conv0, TF kernel flipped spatially),
``{r}x{r}/Conv1`` (``4x4/Conv``), ``{r}x{r}/ToRGB``, ``{r}x{r}/Skip`` (resnet G, flipped too),
``noise{noise_index}``; D ``FromRGB`` (a skip D's epilogue: ``4x4/FromRGB``), ``Conv0``, ``Conv1_down``, ``Skip``,
``4x4/Conv``, ``4x4/Dense0``, ``Output``. TF weights are HWIO / [in, out]. The architecture ('orig' | 'skip' |
'resnet') is read from the variables (older pickles name ToRGB / FromRGB by lod: ``ToRGB_lod0``, as NVlabs'
`legacy.py` converts them) and checked against the static kwargs.
"""

from __future__ import annotations

import collections
import os
import re
from typing import Any

import numpy as np

from alignjax.errors import CheckpointError
from alignjax.io.formats.common import (
    ANY_CHANNELS,
    DEFAULT_MAPPING_LR_MUL,
    RawCheckpoint,
    UnsupportedNetwork,
    _indices,
    _plain,
    _shape,
    _Src,
    default_resample_filter,
)
from alignjax.io.formats.infer import finish
from alignjax.io.safe_pickle import BASE_GLOBALS, DNNLIB_GLOBALS, load_pickle
from alignjax.nn.arch import DLayerSpec, LayerSpec, discriminator_table, synthesis_table


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network`` (TensorFlow StyleGAN/StyleGAN2/ADA pickles).

    After unpickling: ``name``, ``static_kwargs``, ``components`` ({name: TFNetwork}),
    ``variables`` ({var_name: ndarray}, insertion order kept), ``build_func_name``.
    """

    def __init__(self, *args, **kwargs):
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise TypeError('TF network state is not a dict')
        self.state = state

    @property
    def name(self) -> str:
        return str(self.state.get('name', ''))

    @property
    def static_kwargs(self) -> dict:
        kw = self.state.get('static_kwargs') or {}
        return dict(kw) if isinstance(kw, dict) else {}

    @property
    def components(self) -> dict:
        comps = self.state.get('components') or {}
        return dict(comps) if isinstance(comps, dict) else {}

    @property
    def build_func_name(self) -> str | None:
        return self.state.get('build_func_name')

    @property
    def variables(self) -> collections.OrderedDict[str, np.ndarray]:
        out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        for item in self.state.get('variables') or []:
            name, value = item
            out[str(name)] = value
        return out

    def __repr__(self) -> str:
        return f'TFNetwork({self.name})'


# what a TensorFlow network pickle may reference
TF_GLOBALS: dict[tuple[str, str], Any] = {
    **BASE_GLOBALS,
    **DNNLIB_GLOBALS,
    ('dnnlib.tflib.network', 'Network'): TFNetwork,
}


def tf_g_layer_name(s: LayerSpec) -> str:
    """The TF variable scope of a synthesis layer (the reader and tf_export both name layers with it)."""
    if s.kind in ('torgb', 'skip'):
        return f'synthesis/{s.res}x{s.res}/' + ('ToRGB' if s.kind == 'torgb' else 'Skip')
    if s.res == 4:
        return 'synthesis/4x4/Conv'
    return f'synthesis/{s.res}x{s.res}/' + ('Conv0_up' if s.layer == 'conv0' else 'Conv1')


_TF_D_LAYER = {'fromrgb': 'FromRGB', 'conv0': 'Conv0', 'conv1': 'Conv1_down', 'skip': 'Skip'}
_TF_D_EPILOGUE = {'b4.conv': '4x4/Conv', 'b4.fc': '4x4/Dense0', 'b4.out': 'Output'}


def tf_d_layer_name(s: DLayerSpec) -> str:
    """The TF variable scope of a discriminator block or epilogue layer (not the label mapping's)."""
    return _TF_D_EPILOGUE.get(s.name) or f'{s.res}x{s.res}/{_TF_D_LAYER[s.layer]}'


def _tf_params(net: TFNetwork) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def walk(prefix: str, n: TFNetwork, depth: int) -> None:
        if depth > 8:
            return
        for name, value in n.variables.items():
            out[prefix + name] = value
        for name, comp in n.components.items():
            if isinstance(comp, TFNetwork):
                walk(prefix + name + '/', comp, depth + 1)

    walk('', net, 0)
    return out


def _lod_names(tf: dict, kind: str, prefix: str, res: int) -> dict:
    """`{prefix}{kind}_lod{i}/...` (older pickles) renamed `{prefix}{r}x{r}/{kind}/...` with r = res / 2**i."""
    out = {}
    for k, v in tf.items():
        m = re.fullmatch(rf'(?:{re.escape(prefix)})?{kind}_lod(\d+)/(.*)', k)
        if m:
            r = res // 2 ** int(m.group(1))
            k = f'{prefix}{r}x{r}/{kind}/{m.group(2)}'
        out[k] = v
    return out


def _tf_arch(kw: dict, label: str, which: str, default: str, path: str) -> str | None:
    arch = kw.get('architecture', default)
    if arch not in ('orig', 'skip', 'resnet'):
        raise UnsupportedNetwork(
            f'{path}: {label} uses the {which} architecture {arch!r}, which is not supported '
            "(NVlabs has 'orig', 'skip', 'resnet')",
            label,
        )
    return arch


def _tf_activations(kw: dict, label: str, keys: tuple[str, ...], path: str) -> None:
    """TF-ADA lets `nonlinearity` (and G's `mapping_nonlinearity`) be set; alignjax builds lrelu only."""
    for key in keys:
        act = kw.get(key, 'lrelu')
        if act != 'lrelu':
            raise UnsupportedNetwork(
                f"{path}: {label} sets {key}={act!r}; only 'lrelu' (the StyleGAN2 default) is supported", label
            )


def _tf_kwargs(net: TFNetwork) -> dict:
    kw = dict(net.static_kwargs)
    for comp in net.components.values():
        if isinstance(comp, TFNetwork):
            for k, v in comp.static_kwargs.items():
                kw.setdefault(k, v)
    return kw


def _tf_g_to_nvlabs(net: TFNetwork, path: str, label: str) -> tuple[dict, dict]:
    kw = _tf_kwargs(net)
    _tf_arch(kw, label, 'generator', 'skip', path)
    _tf_activations(kw, label, ('nonlinearity', 'mapping_nonlinearity'), path)
    tf = _lod_names(_tf_params(net), 'ToRGB', 'synthesis/', int(kw.get('resolution', 1024)))
    src = _Src(tf, path, label)
    if any(k.startswith('mapping/LabelConcat') for k in tf):
        raise UnsupportedNetwork(f"{path}: {label} uses 'LabelConcat' conditioning, which is not supported", label)
    rs = sorted({int(m.group(1)) for k in tf if (m := re.fullmatch(r'synthesis/(\d+)x\1/.*', k))})
    if not rs:
        src.get('synthesis/4x4/Const/const')  # raises
    res = max(rs)
    # the tensors' architecture (infer.infer_config checks it against the kwargs' once in NVlabs names)
    if any(re.fullmatch(r'synthesis/\d+x\d+/Skip/weight', k) for k in tf):
        arch = 'resnet'
    else:
        arch = 'skip' if all(f'synthesis/{r}x{r}/ToRGB/weight' in tf for r in rs) else 'orig'
    filt = default_resample_filter(kw.get('resample_kernel', [1, 3, 3, 1]))
    use_noise = bool(kw.get('use_noise', True))  # False: no noise_strength variables, no noise inputs
    out: dict[str, np.ndarray] = {}
    if src.has('dlatent_avg'):
        out['mapping.w_avg'] = src.get('dlatent_avg')
    if src.has('mapping/LabelEmbed/weight'):
        out['mapping.embed.weight'] = src.get('mapping/LabelEmbed/weight').T
        out['mapping.embed.bias'] = src.get('mapping/LabelEmbed/bias')
    for i in _indices(tf, r'mapping/Dense(\d+)/weight'):
        out[f'mapping.fc{i}.weight'] = src.get(f'mapping/Dense{i}/weight').T
        out[f'mapping.fc{i}.bias'] = src.get(f'mapping/Dense{i}/bias')
    out['synthesis.b4.const'] = src.get('synthesis/4x4/Const/const')[0]

    def layer(nv: str, tfp: str, conv: str | None, noise_index: int) -> None:
        w = src.get(f'{tfp}/weight')
        if w.ndim != 4:
            raise CheckpointError(f"{path}: {label} key '{tfp}/weight' has shape {_shape(w)}, expected 4-D HWIO")
        if conv in ('conv0', 'skip'):
            w = w[::-1, ::-1]  # TF's transposed convolution uses the spatially flipped kernel
        out[f'{nv}.weight'] = w.transpose(3, 2, 0, 1)
        if conv == 'skip':  # no bias, no style
            out[f'{nv}.resample_filter'] = filt
            return
        out[f'{nv}.bias'] = src.get(f'{tfp}/bias')
        out[f'{nv}.affine.weight'] = src.get(f'{tfp}/mod_weight').T
        out[f'{nv}.affine.bias'] = src.get(f'{tfp}/mod_bias') + 1.0  # TF adds the +1 at run time
        if conv in ('conv0', 'conv1'):
            if use_noise:
                out[f'{nv}.noise_strength'] = src.get(f'{tfp}/noise_strength').reshape(())
                noise = src.get(f'synthesis/noise{noise_index}')
                out[f'{nv}.noise_const'] = noise.reshape(noise.shape[-2:])
            out[f'{nv}.resample_filter'] = filt

    for r in rs:
        out[f'synthesis.b{r}.resample_filter'] = filt
    for s in synthesis_table(res, ANY_CHANNELS, 0, arch):
        layer(f'synthesis.{s.name}', tf_g_layer_name(s), s.layer if s.kind != 'torgb' else None, s.noise_index)
    unused = [k for k in src.unused() if not re.fullmatch(r'synthesis/noise\d+', k)]
    if unused:
        raise CheckpointError(
            f'{path}: {label} has variables that do not belong to a StyleGAN2 generator: {unused[:8]}'
        )
    return out, kw


def _tf_d_to_nvlabs(net: TFNetwork, path: str) -> tuple[dict, dict]:
    kw = _tf_kwargs(net)
    _tf_arch(kw, 'D', 'discriminator', 'resnet', path)
    _tf_activations(kw, 'D', ('nonlinearity',), path)
    tf = _lod_names(_tf_params(net), 'FromRGB', '', int(kw.get('resolution', 1024)))
    src = _Src(tf, path, 'D')
    rs = sorted({int(m.group(1)) for k in tf if (m := re.fullmatch(r'(\d+)x\1/.*', k))})
    if not rs:
        src.get('4x4/Conv/weight')  # raises
    res = max(rs)
    if '4x4/FromRGB/weight' in tf:
        arch = 'skip'
    else:
        arch = 'resnet' if any(re.fullmatch(r'\d+x\d+/Skip/weight', k) for k in tf) else 'orig'
    filt = default_resample_filter(kw.get('resample_kernel', [1, 3, 3, 1]))

    def conv(nv: str, tfp: str, bias: bool = True) -> None:
        w = src.get(f'{tfp}/weight')
        if w.ndim != 4:
            raise CheckpointError(f"{path}: D key '{tfp}/weight' has shape {_shape(w)}, expected 4-D HWIO")
        out[f'{nv}.weight'] = w.transpose(3, 2, 0, 1)
        if bias:
            out[f'{nv}.bias'] = src.get(f'{tfp}/bias')
        out[f'{nv}.resample_filter'] = filt

    out: dict[str, np.ndarray] = {}
    for r in [x for x in reversed(rs) if x > 4]:
        out[f'b{r}.resample_filter'] = filt
    table = discriminator_table(res, ANY_CHANNELS, 0, architecture=arch)
    for s in table:
        if s.kind == 'conv':
            conv(s.name, tf_d_layer_name(s), bias=s.bias)
    if src.has('LabelEmbed/weight'):
        out['mapping.embed.weight'] = src.get('LabelEmbed/weight').T
        out['mapping.embed.bias'] = src.get('LabelEmbed/bias')
        for i in _indices(tf, r'Mapping(\d+)/weight'):
            out[f'mapping.fc{i}.weight'] = src.get(f'Mapping{i}/weight').T
            out[f'mapping.fc{i}.bias'] = src.get(f'Mapping{i}/bias')
    for s in table:
        if s.kind == 'dense':
            out[f'{s.name}.weight'] = src.get(f'{tf_d_layer_name(s)}/weight').T
            out[f'{s.name}.bias'] = src.get(f'{tf_d_layer_name(s)}/bias')
    unused = src.unused()
    if unused:
        raise CheckpointError(f'{path}: D has variables that do not belong to a StyleGAN2 discriminator: {unused[:8]}')
    return out, kw


def read_tf_pkl(path: str | os.PathLike) -> RawCheckpoint:
    """NVlabs TensorFlow StyleGAN2 / StyleGAN2-ADA pickle ``(G, D, Gs)``."""
    path = os.fspath(path)
    data = load_pickle(path, TF_GLOBALS)
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data)):
        raise CheckpointError(f'{path}: not a TensorFlow StyleGAN2 pickle (expected a tuple (G, D, Gs) of networks)')
    tf_g, tf_d, tf_gs = data
    nets: dict[str, dict] = {}
    unsupported: dict[str, UnsupportedNetwork] = {}
    g, gkw = _tf_g_to_nvlabs(tf_g, path, 'G')
    gs, gskw = _tf_g_to_nvlabs(tf_gs, path, 'Gs')
    try:
        d, dkw = _tf_d_to_nvlabs(tf_d, path)
        nets = {'G': g, 'G_ema': gs, 'D': d}
    except UnsupportedNetwork as e:  # G and Gs still load (finish notes the skipped D)
        d, dkw, unsupported['D'] = {}, _tf_kwargs(tf_d), e
        nets = {'G': g, 'G_ema': gs}
    notes: list[str] = []
    for n, sd in (('G', g), ('Gs', gs)):
        if 'mapping.w_avg' not in sd:
            notes.append(
                f'dlatent_avg absent from {n}: mapping.w_avg left out (latent_avg absent); compute it '
                'as the mean of mapping(z) over 10,000 random z'
            )
    hints: dict[str, Any] = {
        'mbstd_group_size': dkw.get('mbstd_group_size', 4),
        'conv_clamp': gskw.get('conv_clamp'),
        'd_conv_clamp': dkw.get('conv_clamp'),
        'mapping_lr_mul': float(gskw.get('mapping_lrmul', DEFAULT_MAPPING_LR_MUL)),
    }
    for key, kw in (('architecture', gskw), ('d_architecture', dkw)):
        if 'architecture' in kw:
            hints[key] = str(kw['architecture'])
    if any(k.startswith('mapping.fc') for k in d):
        hints['d_mapping_lr_mul'] = float(dkw.get('mapping_lrmul', 0.1))  # TF-ADA D's default (legacy.py)
    if hints['mbstd_group_size'] is not None:
        hints['mbstd_group_size'] = int(hints['mbstd_group_size'])
    if 'fmap_base' in gskw and float(gskw.get('fmap_decay', 1.0)) == 1.0:
        hints['channel_base'] = int(gskw['fmap_base']) * 2  # TF counts stages from 1, NVlabs-pytorch from 0
    if 'fmap_max' in gskw:
        hints['channel_max'] = int(gskw['fmap_max'])
    if 'mbstd_group_size' not in dkw:
        notes.append('mbstd_group_size not stored in the TF pickle; assuming 4')
    extra = {'static_kwargs': {'G': _plain(gkw), 'Gs': _plain(gskw), 'D': _plain(dkw)}}
    return finish(nets, path=path, fmt='tf', hints=hints, notes=notes, extra=extra, unsupported=unsupported)
