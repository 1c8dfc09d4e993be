"""NVlabs stylegan2-ada-pytorch / stylegan3 network pickles ``{G, D, G_ema, augment_pipe, ...}``.

The modules are pickled through ``torch_utils.persistence``: they come back as :class:`PersistentModule`
stand-ins holding the pickled ``__dict__`` (their source code is kept as text, never executed); tensors
through torch's own pickling (:data:`alignjax.io.torch_file.TORCH_GLOBALS`).
"""

from __future__ import annotations

import collections
import os
from typing import Any

import numpy as np

from alignjax.errors import CheckpointError
from alignjax.io.formats.common import DEFAULT_MAPPING_LR_MUL, NET_NAMES, RawCheckpoint, UnsupportedNetwork, _plain
from alignjax.io.formats.infer import finish
from alignjax.io.safe_pickle import BASE_GLOBALS, DNNLIB_GLOBALS
from alignjax.io.torch_file import load_torch
from alignjax.io.torch_pickle import TORCH_GLOBALS

# first keys of NVlabs network pickles (training snapshots start with training_set_kwargs)
NVLABS_TOP_KEYS = NET_NAMES + ('training_set_kwargs', 'augment_pipe')


class PersistentModule:
    """Stand-in for a ``torch_utils.persistence`` object (e.g. a stylegan2-ada-pytorch network).

    ``state`` is the pickled ``__dict__`` of the original ``torch.nn.Module`` (``_parameters``,
    ``_buffers``, ``_modules``, ``_init_kwargs``, plain attributes such as ``z_dim``).  The
    module's source code stored in the pickle is kept as text only and never executed.
    """

    def __init__(self, class_name: str, state: dict, version: Any = None, module_src: str | None = None):
        self.class_name = class_name
        self.state = state if isinstance(state, dict) else {}
        self.version = version
        self.module_src = module_src

    # convenient attribute access to the pickled __dict__ (G.z_dim, G.synthesis, ...)
    def __getattr__(self, name: str) -> Any:
        if name in ('class_name', 'state', 'version', 'module_src') or name.startswith('__'):
            raise AttributeError(name)
        state = self.__dict__.get('state', {})
        for group in ('_parameters', '_buffers', '_modules'):
            sub = state.get(group)
            if isinstance(sub, dict) and name in sub:
                return sub[name]
        if name in state:
            return state[name]
        raise AttributeError(f'{self.__dict__.get("class_name", "?")} has no attribute {name!r}')

    @property
    def init_args(self) -> tuple:
        args = self.state.get('_init_args', ())
        return tuple(args) if isinstance(args, (list, tuple)) else ()

    @property
    def init_kwargs(self) -> dict:
        kw = self.state.get('_init_kwargs', {})
        return dict(kw) if isinstance(kw, dict) else {}

    def named_modules(self, prefix: str = ''):
        yield prefix, self
        mods = self.state.get('_modules') or {}
        for name, mod in mods.items():
            if isinstance(mod, PersistentModule):
                yield from mod.named_modules(f'{prefix}{name}.')

    def state_dict(self, prefix: str = '') -> collections.OrderedDict[str, np.ndarray]:
        """Flat ``{name: ndarray}`` in ``torch.nn.Module.state_dict()`` order and naming."""
        out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        params = self.state.get('_parameters') or {}
        for name, value in params.items():
            if value is not None:
                out[prefix + name] = value
        buffers = self.state.get('_buffers') or {}
        skip = self.state.get('_non_persistent_buffers_set') or set()
        for name, value in buffers.items():
            if value is not None and name not in skip:
                out[prefix + name] = value
        mods = self.state.get('_modules') or {}
        for name, mod in mods.items():
            if isinstance(mod, PersistentModule):
                out.update(mod.state_dict(prefix + name + '.'))
        return out

    def __repr__(self) -> str:
        return f'PersistentModule({self.class_name})'


def _reconstruct_persistent_obj(meta: Any) -> Any:
    """Stand-in for ``torch_utils.persistence._reconstruct_persistent_obj`` (never execs source)."""
    if not isinstance(meta, dict):
        raise TypeError('persistent object metadata is not a dict')
    if meta.get('type') != 'class':
        raise TypeError(f'unsupported persistent object type {meta.get("type")!r}')
    return PersistentModule(
        class_name=str(meta.get('class_name')),
        state=meta.get('state') or {},
        version=meta.get('version'),
        module_src=meta.get('module_src'),
    )


# what an NVlabs network pickle may reference
NVLABS_GLOBALS: dict[tuple[str, str], Any] = {
    **BASE_GLOBALS,
    **TORCH_GLOBALS,
    **DNNLIB_GLOBALS,
    ('torch_utils.persistence', '_reconstruct_persistent_obj'): _reconstruct_persistent_obj,
}


_NOT_FOUND = object()


def _layer_conv_clamp(
    net: PersistentModule,
    classes: tuple[str, ...],
    path: str,
    label: str,
    skip_names: tuple[str, ...] = (),
    skip_paths: tuple[str, ...] = (),
) -> Any:
    """The `conv_clamp` attribute the pickled layers of `net` carry (None: no clamp), or _NOT_FOUND.

    The layers are the truth: the stylegan3 repo keeps G's synthesis kwargs flat in `init_kwargs` and usually
    leaves conv_clamp out of them (its module default, 256, applies). Layers named in `skip_names` (D's resnet
    `skip`, built without conv_clamp) or whose path is in `skip_paths` (a skip D's epilogue `b4.fromrgb`, also
    unclamped) are not asked."""
    found = {}
    for name, mod in net.named_modules():
        if mod.class_name not in classes or 'conv_clamp' not in mod.state:
            continue
        if name.rstrip('.').rsplit('.', 1)[-1] in skip_names or name.rstrip('.') in skip_paths:
            continue
        value = _plain(mod.state['conv_clamp'])
        if value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise CheckpointError(
                    f'{path}: {label} layer {name.rstrip(".")} has conv_clamp={value!r}, expected a number or None'
                ) from None
        found.setdefault(value, name.rstrip('.'))
    if not found:
        return _NOT_FOUND
    if len(found) > 1:
        raise CheckpointError(
            f'{path}: {label} layers disagree on conv_clamp: '
            + ', '.join(f'{n}={v}' for v, n in found.items())
            + ' (one value per network expected)'
        )
    return next(iter(found))


def _unsupported_activation(net: PersistentModule, path: str, label: str) -> UnsupportedNetwork | None:
    """An error for the first pickled layer whose activation is neither lrelu nor linear (NVlabs lets
    `activation` be set; alignjax builds the StyleGAN2 default only), else None."""
    for name, mod in net.named_modules():
        act = _plain(mod.state.get('activation'))
        if act is not None and act not in ('lrelu', 'linear'):
            return UnsupportedNetwork(
                f'{path}: {label} layer {name.rstrip(".")} uses activation {act!r}, which is '
                "not supported (StyleGAN2's lrelu only)",
                label,
            )
    return None


def read_nvlabs_pkl(path: str | os.PathLike) -> RawCheckpoint:
    """stylegan2-ada-pytorch network pickle (``{'G', 'D', 'G_ema', 'augment_pipe', ...}``)."""
    path = os.fspath(path)
    data = load_torch(path, NVLABS_GLOBALS)  # plain pickle with torch storages inside (restricted)
    if not isinstance(data, dict) or not any(k in data for k in NET_NAMES):
        raise CheckpointError(f'{path}: not an NVlabs network pickle (expected a dict with G / D / G_ema)')
    notes: list[str] = []
    extra: dict[str, Any] = {}
    nets: dict[str, dict] = {}
    modules: dict[str, PersistentModule] = {}
    for name in NET_NAMES:
        mod = data.get(name)
        if mod is None:
            continue
        if not isinstance(mod, PersistentModule):
            raise CheckpointError(f"{path}: '{name}' is {type(mod).__name__}, expected a persistent network module")
        expected = 'Discriminator' if name == 'D' else 'Generator'
        if mod.class_name != expected:
            raise CheckpointError(f"{path}: '{name}' is a {mod.class_name}, expected a {expected}")
        modules[name] = mod
        nets[name] = mod.state_dict()
    for name in NET_NAMES:
        if name not in nets:
            notes.append(f'{name} absent from the pickle')
    unsupported = {n: e for n, m in modules.items() if (e := _unsupported_activation(m, path, n)) is not None}

    hints: dict[str, Any] = {}
    g = modules.get('G_ema') or modules.get('G')
    if g is not None:
        kw = g.init_kwargs
        synth = kw.get('synthesis_kwargs') or {}
        mapk = kw.get('mapping_kwargs') or {}
        clamp = _layer_conv_clamp(g, ('SynthesisLayer', 'ToRGBLayer'), path, 'G')
        if clamp is _NOT_FOUND:  # no layer says: the kwargs (ada-pytorch nests them, the stylegan3 repo does not)
            clamp = synth.get('conv_clamp', kw.get('conv_clamp'))
        hints['conv_clamp'] = clamp
        lr = None
        try:
            lr = g.mapping.fc0.init_kwargs.get('lr_multiplier')
        except AttributeError:
            pass
        if lr is None:
            lr = mapk.get('lr_multiplier')
        if lr is not None:
            hints['mapping_lr_mul'] = float(lr)
        for k in ('channel_base', 'channel_max'):
            if k in synth:
                hints[k] = int(synth[k])
        arch = synth.get('architecture', kw.get('architecture'))  # nested (ada-pytorch) or flat (stylegan3 repo)
        if arch is not None:
            hints['architecture'] = str(_plain(arch))
        if 'num_fp16_res' in synth:
            hints['num_fp16_res'] = int(synth['num_fp16_res'])
        extra.setdefault('init_kwargs', {})
        for n in ('G', 'G_ema'):
            if n in modules:
                extra['init_kwargs'][n] = _plain(modules[n].init_kwargs)
    d = modules.get('D')
    if d is not None:
        kw = d.init_kwargs
        extra.setdefault('init_kwargs', {})['D'] = _plain(kw)
        if kw.get('architecture') is not None:
            hints['d_architecture'] = str(_plain(kw['architecture']))
        group = None
        try:
            mbstd = d.b4.mbstd
        except AttributeError:
            mbstd = None
        if isinstance(mbstd, PersistentModule):
            group = mbstd.state.get('group_size', mbstd.init_kwargs.get('group_size'))
        else:
            group = (kw.get('epilogue_kwargs') or {}).get('mbstd_group_size', 4)
        hints['mbstd_group_size'] = None if group is None else int(group)
        clamp = _layer_conv_clamp(d, ('Conv2dLayer',), path, 'D', skip_names=('skip',), skip_paths=('b4.fromrgb',))
        hints['d_conv_clamp'] = kw.get('conv_clamp') if clamp is _NOT_FOUND else clamp
        if any(k.startswith('mapping.fc') for k in nets.get('D', {})):
            try:
                lr = d.mapping.fc0.init_kwargs.get('lr_multiplier')
            except AttributeError:
                lr = None
            if lr is None:
                lr = (kw.get('mapping_kwargs') or {}).get('lr_multiplier', DEFAULT_MAPPING_LR_MUL)
            hints['d_mapping_lr_mul'] = float(lr)
        if g is None:
            hints['conv_clamp'] = hints['d_conv_clamp']
            for k in ('channel_base', 'channel_max'):
                if k in kw:
                    hints[k] = int(kw[k])

    aug = data.get('augment_pipe')
    if isinstance(aug, PersistentModule):
        p = aug.state_dict().get('p')
        if p is not None:
            extra['augment_p'] = float(np.asarray(p).reshape(-1)[0])
        extra['augment_kwargs'] = _plain(aug.init_kwargs)
    tsk = data.get('training_set_kwargs')
    if tsk is not None:
        extra['training_set_kwargs'] = _plain(tsk)
    return finish(nets, path=path, fmt='nvlabs', hints=hints, notes=notes, extra=extra, unsupported=unsupported)
