"""Write the NVlabs TensorFlow StyleGAN2 / ADA network-pickle layout ``(G, D, Gs)`` (the inverse of ``tf.py``).

The layout is the one of the official StyleAlign checkpoints and of every TF-era NVlabs pickle: a tuple of three
``dnnlib.tflib.network.Network`` objects whose pickled state is a plain dict ::

    {'version': 4, 'name': 'G', 'static_kwargs': {...}, 'components': {'mapping': Network, 'synthesis': Network},
     'build_module_src': '<a comment, no code>', 'build_func_name': 'G_main', 'variables': [(name, ndarray), ...]}

NVlabs' own ``legacy.load_network_pkl`` (stylegan2-ada-pytorch, stylegan3) converts such a file into its PyTorch
networks on load, so a model trained or fine-tuned here opens in NVlabs' projector, StyleCLIP and the other tools
built on those repositories; ``alignjax.load_checkpoint`` reads it back to identical outputs.

The file holds numbers and plain containers only. Its globals are exactly ``dnnlib.tflib.network.Network`` (a
name: no code of it is written -- the state's ``build_module_src`` is a comment), ``numpy.core.multiarray
._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``: the stand-ins our allow-list unpickler accepts for this
format. (``numpy.core`` rather than numpy 2's ``numpy._core`` so that numpy 1.x environments -- NVlabs' usual
ones -- read it too; numpy 2 still resolves it.) TensorFlow's own ``dnnlib`` could not rebuild these networks:
it executes ``build_module_src``, which we do not write.

Name maps (``tf.py`` reads the same): ``mapping.fc{i}`` -> ``mapping/Dense{i}`` (transposed),
``synthesis.b4.const`` -> ``synthesis/4x4/Const/const`` ([1, C, 4, 4]), ``b4.conv1`` -> ``4x4/Conv``,
``b{r}.conv0`` -> ``{r}x{r}/Conv0_up`` (HWIO, spatially flipped), ``b{r}.conv1`` -> ``{r}x{r}/Conv1``,
``torgb`` -> ``ToRGB``; ``affine`` -> ``mod_weight`` (transposed) / ``mod_bias`` (stored without NVlabs' +1);
``noise_const`` -> ``synthesis/noise{j}`` ([1, 1, r, r]); ``mapping.w_avg`` -> ``dlatent_avg``. D: ``fromrgb`` ->
``FromRGB``, ``conv0`` -> ``Conv0``, ``conv1`` -> ``Conv1_down``, ``skip`` -> ``Skip``, ``b4.conv/fc/out`` ->
``4x4/Conv``, ``4x4/Dense0``, ``Output``; conditional models: ``mapping.embed`` -> ``LabelEmbed``, D
``mapping.fc{i}`` -> ``Mapping{i}``.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from alignjax.errors import CheckpointError
from alignjax.io.formats.common import _Src
from alignjax.io.formats.tf import tf_d_layer_name, tf_g_layer_name
from alignjax.nn.arch import DEFAULT_RESAMPLE_FILTER, discriminator_layers, synthesis_weights

__all__ = ['TF_PICKLE_GLOBALS', 'tf_networks', 'write_tf_pkl']

# The only globals an exported file names (test_export_tf checks the file against this list).
TF_PICKLE_GLOBALS = frozenset(
    {
        ('dnnlib.tflib.network', 'Network'),
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy', 'ndarray'),
        ('numpy', 'dtype'),
    }
)
NO_CODE = '# written by alignjax: weights only, no code (load with NVlabs legacy.load_network_pkl or alignjax)\n'


class _Network:
    """What one ``dnnlib.tflib.network.Network`` pickles as: NEWOBJ of the class (by name), then its state dict."""

    def __init__(self, state: dict):
        self.state = state

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (_Network,), self.state


class _Pickler(pickle._Pickler):  # the pure-Python pickler: its save_global can be overridden
    def save_global(self, obj, name=None):
        target = ('dnnlib.tflib.network', 'Network') if obj is _Network else None
        if target is None:
            module, qual = getattr(obj, '__module__', ''), name or getattr(obj, '__qualname__', '')
            if module in ('numpy._core.multiarray', 'numpy.core.multiarray') and qual == '_reconstruct':
                target = ('numpy.core.multiarray', '_reconstruct')
            elif obj is np.ndarray:
                target = ('numpy', 'ndarray')
            elif obj is np.dtype:
                target = ('numpy', 'dtype')
            else:
                raise pickle.PicklingError(f'tf export: refusing to write the global {module}.{qual}')
        self.write(pickle.GLOBAL + f'{target[0]}\n{target[1]}\n'.encode('ascii'))
        self.memoize(obj)


def _f32(a) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise CheckpointError(f'tf export: expected floating-point weights, got {a.dtype}')
    return np.array(a, dtype='<f4', order='C')  # (not ascontiguousarray: it makes 0-d arrays 1-d)


def _hwio(w) -> np.ndarray:
    return np.asarray(w).transpose(2, 3, 1, 0)  # OIHW (NVlabs) -> HWIO (TF)


def _g_variables(sd: Mapping[str, Any], label: str, g_config) -> tuple[list, list, list]:
    """NVlabs G state dict -> (top-level, mapping, synthesis) TF variable lists; the synthesis layers and
    their TF names come from the architecture table (`tf.tf_g_layer_name`, as the reader derives them)."""
    top, mapping, synth, noises = [], [], [], {}
    get = _Src(sd, 'tf export', label).get  # (a missing tensor: an error naming it)

    def conv(tfp, nv, flip=False, noise=None):
        w = _hwio(get(f'{nv}.weight'))
        synth.append((f'{tfp}/weight', _f32(w[::-1, ::-1] if flip else w)))
        synth.append((f'{tfp}/mod_weight', _f32(np.asarray(get(f'{nv}.affine.weight')).T)))
        # TF stores the affine bias minus 1. In float32, b - 1 rounds wherever |b - 1| has a larger exponent than
        # b, so it is stored in float64, where b - 1 and the reader's + 1 are exact (NVlabs' legacy.py and our
        # reader cast back to float32).
        b = _f32(get(f'{nv}.affine.bias')).astype('<f8')
        synth.append((f'{tfp}/mod_bias', b - 1.0))
        if noise is not None and getattr(g_config, 'use_noise', True):
            synth.append((f'{tfp}/noise_strength', _f32(np.asarray(get(f'{nv}.noise_strength')).reshape(()))))
            n = np.asarray(get(f'{nv}.noise_const'))
            noises[noise] = _f32(n.reshape(1, 1, *n.shape[-2:]))
        synth.append((f'{tfp}/bias', _f32(get(f'{nv}.bias'))))

    if 'mapping.w_avg' in sd:
        top.append(('dlatent_avg', _f32(sd['mapping.w_avg'])))
    if 'mapping.embed.weight' in sd:
        mapping.append(('LabelEmbed/weight', _f32(np.asarray(sd['mapping.embed.weight']).T)))
        mapping.append(('LabelEmbed/bias', _f32(sd['mapping.embed.bias'])))
    fcs = sorted({int(m.group(1)) for k in sd if (m := re.fullmatch(r'mapping\.fc(\d+)\.weight', k))})
    for i in fcs:
        mapping.append((f'Dense{i}/weight', _f32(np.asarray(sd[f'mapping.fc{i}.weight']).T)))
        mapping.append((f'Dense{i}/bias', _f32(sd[f'mapping.fc{i}.bias'])))
    synth.append(('4x4/Const/const', _f32(np.asarray(get('synthesis.b4.const'))[None])))
    for spec in synthesis_weights(g_config):
        tfp = tf_g_layer_name(spec).removeprefix('synthesis/')
        noise = spec.noise_index if spec.kind == 'conv' else None
        conv(tfp, f'synthesis.{spec.name}', flip=spec.layer == 'conv0', noise=noise)
    synth += [(f'noise{j}', noises[j]) for j in sorted(noises)]
    known = re.compile(
        r'mapping\.(w_avg|embed\.(weight|bias)|fc\d+\.(weight|bias))|synthesis\.b4\.const|'
        r'synthesis\.b\d+\.(conv0|conv1|torgb)\.(weight|bias|affine\.weight|affine\.bias|'
        r'noise_strength|noise_const)|.*resample_filter'
    )
    unknown = [k for k in sd if not known.fullmatch(k)]
    if unknown:
        raise CheckpointError(
            f'tf export: {label} has tensors the TF StyleGAN2 layout cannot hold: {unknown[:6]} '
            "(only the 'skip' generator architecture is written)"
        )
    return top, mapping, synth


def _d_variables(sd: Mapping[str, Any], d_config) -> list:
    """NVlabs D state dict -> TF variables, in the architecture table's order with its TF names
    (`tf.tf_d_layer_name`); the label mapping as TF names it (LabelEmbed, Mapping{i})."""
    get = _Src(sd, 'tf export', 'D').get
    out = []
    for spec in discriminator_layers(d_config):
        if spec.name.startswith('mapping.'):
            tfn = 'LabelEmbed' if spec.layer == 'embed' else f'Mapping{spec.layer.removeprefix("fc")}'
        else:
            tfn = tf_d_layer_name(spec)
        w = np.asarray(get(f'{spec.name}.weight'))
        out.append((f'{tfn}/weight', _f32(_hwio(w) if spec.kind == 'conv' else w.T)))
        if spec.bias:
            out.append((f'{tfn}/bias', _f32(get(f'{spec.name}.bias'))))
    known = re.compile(
        r'b\d+\.(fromrgb|conv0|conv1)\.(weight|bias)|b\d+\.skip\.weight|b4\.(conv|fc|out)\.(weight|bias)|'
        r'mapping\.(embed|fc\d+)\.(weight|bias)|.*resample_filter'
    )
    unknown = [k for k in sd if not known.fullmatch(k)]
    if unknown:
        raise CheckpointError(
            f'tf export: D has tensors the TF StyleGAN2 layout cannot hold: {unknown[:6]} '
            "(only the 'resnet' discriminator architecture is written)"
        )
    return out


def _fmap_base(channel_base: int) -> int:
    if channel_base % 2:
        raise CheckpointError(f'tf export: channel_base {channel_base} is odd; TF counts fmap_base = channel_base / 2')
    return channel_base // 2


def _g_kwargs(g, sd) -> dict:
    kw = {
        'num_channels': int(g.img_channels),
        'resolution': int(g.resolution),
        'label_size': int(g.c_dim),
        'latent_size': int(g.z_dim),
        'dlatent_size': int(g.w_dim),
        'mapping_layers': int(g.mapping_layers),
        'fmap_base': _fmap_base(int(g.channel_base)),
        'fmap_max': int(g.channel_max),
    }
    if float(g.mapping_lr_mul) != 0.01:
        kw['mapping_lrmul'] = float(g.mapping_lr_mul)
    if 'mapping.embed.weight' in sd and int(np.shape(sd['mapping.embed.weight'])[0]) != int(g.w_dim):
        kw['label_fmaps'] = int(np.shape(sd['mapping.embed.weight'])[0])
    hidden = {int(np.shape(sd[f'mapping.fc{i}.weight'])[0]) for i in range(int(g.mapping_layers) - 1)}
    if hidden and hidden != {int(g.w_dim)}:
        kw['mapping_fmaps'] = hidden.pop()
    if getattr(g, 'w_avg_beta', 0.995) not in (None, 0.995):
        kw['w_avg_beta'] = float(g.w_avg_beta)
    if g.conv_clamp is not None:
        kw['conv_clamp'] = float(g.conv_clamp)
    rf = tuple(getattr(g, 'resample_filter', DEFAULT_RESAMPLE_FILTER))
    if rf != DEFAULT_RESAMPLE_FILTER:
        kw['resample_kernel'] = list(rf)
    if not getattr(g, 'use_noise', True):
        kw['use_noise'] = False
    return kw


def _d_kwargs(d, sd) -> dict:
    kw = {
        'num_channels': int(d.img_channels),
        'resolution': int(d.resolution),
        'label_size': int(d.c_dim),
        'fmap_base': _fmap_base(int(d.channel_base)),
        'fmap_max': int(d.channel_max),
        'mbstd_group_size': None if d.mbstd_group_size is None else int(d.mbstd_group_size),
        'mbstd_num_features': int(d.mbstd_num_channels),
    }
    if d.conv_clamp is not None:
        kw['conv_clamp'] = float(d.conv_clamp)
    if d.c_dim:
        kw['mapping_layers'] = len([k for k in sd if re.fullmatch(r'mapping\.fc\d+\.weight', k)])
        kw['mapping_lrmul'] = float(d.mapping_lr_mul)
        widths = {int(np.shape(sd['mapping.embed.weight'])[0])} | {
            int(np.shape(sd[k])[0]) for k in sd if re.fullmatch(r'mapping\.fc\d+\.weight', k)
        }
        if len(widths) > 1:
            raise CheckpointError(
                f"tf export: TF-ADA's conditional D has one mapping width (mapping_fmaps) for its label embedding, "
                f'hidden layers and cmap; this D has {sorted(widths)}'
            )
        kw['mapping_fmaps'] = widths.pop()
    rf = tuple(getattr(d, 'resample_filter', DEFAULT_RESAMPLE_FILTER))
    if rf != DEFAULT_RESAMPLE_FILTER:
        kw['resample_kernel'] = list(rf)
    return kw


def _net(name: str, func: str, kwargs: dict, variables: list, components: dict | None = None) -> _Network:
    return _Network(
        {
            'version': 4,
            'name': name,
            'static_kwargs': dict(kwargs),
            'components': components or {},
            'build_module_src': NO_CODE,
            'build_func_name': func,
            'variables': variables,
        }
    )


def tf_networks(sds: Mapping[str, Mapping[str, Any]], g_config, d_config) -> tuple[tuple, list[str]]:
    """(G, D, Gs) stand-ins from NVlabs state dicts {'G', 'G_ema', 'D'} (G defaults to G_ema) and the notes."""
    notes = []
    if 'D' not in sds or d_config is None:
        raise CheckpointError(
            'tf export: the TF layout (G, D, Gs) needs a discriminator and this checkpoint has none '
            '(export it as .pt, or fine-tune once here so that it has a D)'
        )
    for cfg, arch in ((g_config, 'skip'), (d_config, 'resnet')):
        got = getattr(cfg, 'architecture', arch)
        if got != arch:
            raise CheckpointError(
                f"tf export: architecture {got!r}: only the '{arch}' "
                f'{"generator" if cfg is g_config else "discriminator"} is written'
            )
    gs_sd = sds.get('G_ema', sds.get('G'))
    g_sd = sds.get('G')
    if g_sd is None:
        g_sd = gs_sd
        notes.append('tf export: no training copy G in this checkpoint; G is written as a copy of G_ema')
    gkw = _g_kwargs(g_config, gs_sd)
    nets = []
    for name, sd in (('G', g_sd), ('Gs', gs_sd)):
        top, mapping, synth = _g_variables(sd, name, g_config)
        comps = {
            'mapping': _net('G_mapping', 'G_mapping', gkw, mapping),
            'synthesis': _net('G_synthesis', 'G_synthesis_stylegan2', gkw, synth),
        }
        nets.append(_net(name, 'G_main', gkw, top, comps))
    d = _net('D', 'D_stylegan2', _d_kwargs(d_config, sds['D']), _d_variables(sds['D'], d_config))
    return (nets[0], d, nets[1]), notes


def dumps_tf(sds, g_config, d_config) -> tuple[bytes, list[str]]:
    nets, notes = tf_networks(sds, g_config, d_config)
    buf = io.BytesIO()
    _Pickler(buf, protocol=3).dump(nets)
    return buf.getvalue(), notes


def write_tf_pkl(path, sds, g_config, d_config) -> list[str]:
    """Write (G, D, Gs) to `path` atomically (a temporary file renamed into place); returns notes."""
    data, notes = dumps_tf(sds, g_config, d_config)
    path = Path(os.fspath(path))
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return notes
