"""Test-wide setup: 8 fake CPU devices for the data-parallel tests (must precede the first jax import), the
shared fixture paths, and helpers that several test files use (a perturbed "fine-tuned" child)."""

import os
import pathlib
import tempfile

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# One persistent compilation cache for the whole run (subprocesses inherit it): the same tiny programs are
# compiled once instead of by every test and every train.py subprocess.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(tempfile.gettempdir(), 'alignjax-test-jax-cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.2')

import pytest  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / 'shared'
FIXTURES_ROOT = SHARED / 'fixtures'
FIXTURES = FIXTURES_ROOT / 'stylegan2_32'
CLAMP_FIXTURES = FIXTURES_ROOT / 'clamp_32'
COND_FIXTURES = FIXTURES_ROOT / 'cond_c10_dmap0_32'
REALDATA = SHARED / 'realdata'


def _missing(msg: str):
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
        pytest.fail(f'{msg} (CI=true: tests of ../shared data must not skip; provide ../shared)')
    pytest.skip(msg)


def require(path: pathlib.Path, what: str = 'fixtures'):
    """Skip when `path` is missing -- but fail under CI (CI=true), where the parity tests must never skip."""
    if not path.exists():
        _missing(f'{what} not found at {path}')
    return path


def require_files(folder: pathlib.Path, pattern: str = '*.jpg', n: int = 1, what: str = 'real photos'):
    """The files `pattern` in `folder`, sorted (at least `n`, else skip -- or fail under CI, as `require`)."""
    files = sorted(pathlib.Path(folder).glob(pattern))
    if len(files) < n:
        _missing(f'{what}: {n} x {pattern} not found under {folder} (found {len(files)})')
    return files


@pytest.fixture(scope='session')
def fixtures_dir():
    return require(FIXTURES)


@pytest.fixture(scope='session')
def reference(fixtures_dir):
    import numpy as np

    return dict(np.load(fixtures_dir / 'reference.npz'))


def child_of(parent, scale=0.3, seed=1, mapping=False):
    """A 'fine-tuned' child: every synthesis weight (and optionally mapping weight) perturbed, buffers kept, so it
    differs from the parent but stays aligned with it."""
    import jax
    import numpy as np

    rng = np.random.RandomState(seed)
    v = jax.tree_util.tree_map(lambda x: x, parent.variables)
    parts = ['synthesis', 'mapping'] if mapping else ['synthesis']
    for part in parts:
        leaves, tdef = jax.tree_util.tree_flatten(v['params'][part])
        v['params'][part] = jax.tree_util.tree_unflatten(
            tdef, [x + scale * np.asarray(rng.randn(*np.shape(x)), np.float32) * (np.std(x) + 0.05) for x in leaves]
        )
    return parent.with_variables(v)


def save_child_checkpoint(parent_ck, path, scale=0.3, seed=1):
    """A real child checkpoint on disk: `parent_ck`'s G_ema perturbed (`child_of`), saved by `Checkpoint.save`
    (G_ema only)."""
    import alignjax as aj

    child = child_of(parent_ck.generator(), scale=scale, seed=seed)
    aj.Checkpoint(child.config, None, {'G_ema': child.variables}).save(path)
    return path


# ---------------------------------------------------------------------------------------------------------
# NVlabs network pickles from state dicts (the torch_utils.persistence layout, numpy arrays as tensors).

NVLABS_BUFFERS = ('resample_filter', 'noise_const', 'w_avg')


class _Persistent:
    """Pickles as a torch_utils.persistence object: `_reconstruct_persistent_obj(meta)`."""

    def __init__(self, class_name, init_kwargs=None):
        self.meta = dict(
            type='class',
            version=4,
            module_src='# stub',
            class_name=class_name,
            state={
                '_parameters': {},
                '_buffers': {},
                '_modules': {},
                '_init_args': (),
                '_init_kwargs': dict(init_kwargs or {}),
            },
        )

    def __reduce__(self):
        import sys

        return (sys.modules['torch_utils.persistence']._reconstruct_persistent_obj, (self.meta,))


def _persistent_tree(sd, class_name, init_kwargs, attrs=None):
    """A module tree from a flat NVlabs state dict (`resample_filter`, `noise_const`, `w_avg` as buffers);
    `attrs` {module path: {attribute: value}} sets plain attributes of the pickled modules."""
    import numpy as np

    root = _Persistent(class_name, init_kwargs)

    def module(path):
        m = root
        for part in path:
            m = m.meta['state']['_modules'].setdefault(part, _Persistent('Module'))
        return m

    for key, value in sd.items():
        *path, leaf = key.split('.')
        group = '_buffers' if leaf in NVLABS_BUFFERS else '_parameters'
        module(path).meta['state'][group][leaf] = np.asarray(value, np.float32)
    for path, kv in (attrs or {}).items():
        module(path.split('.')).meta['state'].update(kv)
    return root


def write_nvlabs_pickle(path, nets, monkeypatch, attrs=None):
    """Write `{name: (state dict, init kwargs)}` ('G', 'G_ema', 'D') as an NVlabs network pickle at `path`;
    `attrs` {name: {module path: {attribute: value}}} (e.g. a layer's `activation`)."""
    import pickle
    import sys
    import types

    def _reconstruct_persistent_obj(meta):  # only ever called by pickle.loads in a real torch_utils
        raise AssertionError

    mod = types.ModuleType('torch_utils.persistence')
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = 'torch_utils.persistence'
    _reconstruct_persistent_obj.__qualname__ = '_reconstruct_persistent_obj'
    monkeypatch.setitem(sys.modules, 'torch_utils', types.ModuleType('torch_utils'))
    monkeypatch.setitem(sys.modules, 'torch_utils.persistence', mod)
    data = {
        name: _persistent_tree(sd, 'Discriminator' if name == 'D' else 'Generator', kw, (attrs or {}).get(name))
        for name, (sd, kw) in nets.items()
    }
    data = {'G': data.get('G'), 'D': data.get('D'), 'G_ema': data.get('G_ema'), 'augment_pipe': None}
    pathlib.Path(path).write_bytes(pickle.dumps(data, protocol=4))
    return path


# ---------------------------------------------------------------------------------------------------------
# NVlabs TensorFlow pickles from NVlabs (pytorch) state dicts: the inverse of NVlabs' `legacy.py` conversion,
# written out here by its rules (not through alignjax's name maps, which the readers test).


class _TFNetwork:
    """Pickles as dnnlib.tflib.network.Network with `state` (name, static_kwargs, components, variables)."""

    def __init__(self, state=None):
        self.state = state

    def __reduce__(self):
        import sys

        return (sys.modules['dnnlib.tflib.network'].Network, (), self.state)


def _tf_g_vars(sd):
    """(top, mapping, synthesis) TF variables of an NVlabs G state dict."""
    import math
    import re

    import numpy as np

    top, mapping, synth = {}, {}, {}
    hwio = lambda w: np.ascontiguousarray(np.asarray(w).transpose(2, 3, 1, 0))
    flip = lambda w: np.ascontiguousarray(hwio(w)[::-1, ::-1])
    for k, v in sd.items():
        v = np.asarray(v, np.float32)
        if k.endswith('resample_filter'):
            continue
        if k == 'mapping.w_avg':
            top['dlatent_avg'] = v
        elif m := re.fullmatch(r'mapping\.(fc(\d+)|embed)\.(weight|bias)', k):
            name = f'Dense{m.group(2)}' if m.group(2) is not None else 'LabelEmbed'
            mapping[f'{name}/{m.group(3)}'] = v.T if m.group(3) == 'weight' else v
        elif k == 'synthesis.b4.const':
            synth['4x4/Const/const'] = v[None]
        else:
            m = re.fullmatch(r'synthesis\.b(\d+)\.(conv0|conv1|torgb|skip)\.(.*)', k)
            r, layer, leaf = int(m.group(1)), m.group(2), m.group(3)
            scope = f'{r}x{r}/' + (
                'Conv'
                if (r, layer) == (4, 'conv1')
                else {'conv0': 'Conv0_up', 'conv1': 'Conv1', 'torgb': 'ToRGB', 'skip': 'Skip'}[layer]
            )
            if leaf == 'noise_const':
                j = 0 if r == 4 else int(math.log2(r)) * 2 - (5 if layer == 'conv0' else 4)
                synth[f'noise{j}'] = v[None, None]
            elif leaf == 'weight':
                synth[f'{scope}/weight'] = flip(v) if layer in ('conv0', 'skip') else hwio(v)
            elif leaf == 'affine.weight':
                synth[f'{scope}/mod_weight'] = v.T
            elif leaf == 'affine.bias':
                synth[f'{scope}/mod_bias'] = v - 1
            else:  # bias, noise_strength
                synth[f'{scope}/{leaf}'] = v
    return top, mapping, synth


def _tf_d_vars(sd):
    import re

    import numpy as np

    out = {}
    for k, v in sd.items():
        v = np.asarray(v, np.float32)
        if k.endswith('resample_filter'):
            continue
        if m := re.fullmatch(r'mapping\.(fc(\d+)|embed)\.(weight|bias)', k):
            name = f'Mapping{m.group(2)}' if m.group(2) is not None else 'LabelEmbed'
            out[f'{name}/{m.group(3)}'] = v.T if m.group(3) == 'weight' else v
            continue
        m = re.fullmatch(r'b(\d+)\.(fromrgb|conv0|conv1|skip|conv|fc|out)\.(weight|bias)', k)
        r, layer, leaf = int(m.group(1)), m.group(2), m.group(3)
        scope = {'conv': '4x4/Conv', 'fc': '4x4/Dense0', 'out': 'Output'}.get(layer) or f'{r}x{r}/' + {
            'fromrgb': 'FromRGB',
            'conv0': 'Conv0',
            'conv1': 'Conv1_down',
            'skip': 'Skip',
        }[layer]
        if leaf == 'weight':
            v = v.T if v.ndim == 2 else np.ascontiguousarray(v.transpose(2, 3, 1, 0))
        out[f'{scope}/{leaf}'] = v
    return out


def write_tf_pickle(path, g_sd, d_sd, g_kwargs, d_kwargs, monkeypatch):
    """Write an NVlabs TF pickle (G, D, Gs) from NVlabs G / D state dicts (G serves as G and Gs) with the given
    TF static kwargs (e.g. `architecture`, `resolution`, `mbstd_group_size`)."""
    import pickle
    import sys
    import types

    mod = types.ModuleType('dnnlib.tflib.network')
    mod.Network = type('Network', (_TFNetwork,), {'__module__': 'dnnlib.tflib.network'})
    for name in ('dnnlib', 'dnnlib.tflib'):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, 'dnnlib.tflib.network', mod)

    def net(name, variables, kwargs, components=None):
        return _TFNetwork(
            dict(
                version=4,
                name=name,
                static_kwargs=dict(kwargs),
                components=components or {},
                variables=list(variables.items()),
                build_func_name=name,
            )
        )

    top, mapping, synth = _tf_g_vars(g_sd)

    def gen(name):
        return net(
            name, top, g_kwargs, {'mapping': net('G_mapping', mapping, {}), 'synthesis': net('G_synthesis', synth, {})}
        )

    nets = (gen('G'), net('D', _tf_d_vars(d_sd), d_kwargs), gen('Gs'))
    pathlib.Path(path).write_bytes(pickle.dumps(nets, protocol=4))
    return path
