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


def require(path: pathlib.Path, what: str = 'fixtures'):
    """Skip when `path` is missing -- but fail under CI (CI=true), where the parity tests must never skip."""
    if not path.exists():
        msg = f'{what} not found at {path}'
        if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
            pytest.fail(f'{msg} (CI=true: the parity tests must not skip; provide ../shared/fixtures)')
        pytest.skip(msg)
    return path


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
        v['params'][part] = jax.tree_util.tree_unflatten(tdef, [
            x + scale * np.asarray(rng.randn(*np.shape(x)), np.float32) * (np.std(x) + 0.05) for x in leaves])
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
        self.meta = dict(type='class', version=4, module_src='# stub', class_name=class_name,
                         state={'_parameters': {}, '_buffers': {}, '_modules': {},
                                '_init_args': (), '_init_kwargs': dict(init_kwargs or {})})

    def __reduce__(self):
        import sys
        return (sys.modules['torch_utils.persistence']._reconstruct_persistent_obj, (self.meta,))


def _persistent_tree(sd, class_name, init_kwargs):
    """A module tree from a flat NVlabs state dict (`resample_filter`, `noise_const`, `w_avg` as buffers)."""
    import numpy as np
    root = _Persistent(class_name, init_kwargs)
    for key, value in sd.items():
        *path, leaf = key.split('.')
        m = root
        for part in path:
            m = m.meta['state']['_modules'].setdefault(part, _Persistent('Module'))
        group = '_buffers' if leaf in NVLABS_BUFFERS else '_parameters'
        m.meta['state'][group][leaf] = np.asarray(value, np.float32)
    return root


def write_nvlabs_pickle(path, nets, monkeypatch):
    """Write `{name: (state dict, init kwargs)}` ('G', 'G_ema', 'D') as an NVlabs network pickle at `path`."""
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
    data = {name: _persistent_tree(sd, 'Discriminator' if name == 'D' else 'Generator', kw)
            for name, (sd, kw) in nets.items()}
    data = {'G': data.get('G'), 'D': data.get('D'), 'G_ema': data.get('G_ema'), 'augment_pipe': None}
    pathlib.Path(path).write_bytes(pickle.dumps(data, protocol=4))
    return path
