"""Test-wide setup: 8 fake CPU devices for the data-parallel tests (must precede the first jax import)."""
import os
import pathlib

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

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
