"""Test-wide setup: 8 fake CPU devices for the data-parallel tests (must precede the first jax import)."""
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
FIXTURES = SHARED / 'fixtures' / 'stylegan2_32'


@pytest.fixture(scope='session')
def fixtures_dir():
    if not FIXTURES.is_dir():
        pytest.skip(f'fixtures not found at {FIXTURES}')
    return FIXTURES


@pytest.fixture(scope='session')
def reference(fixtures_dir):
    import numpy as np
    return dict(np.load(fixtures_dir / 'reference.npz'))
