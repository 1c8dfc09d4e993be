"""alignjax adds its XLA:CPU flags to XLA_FLAGS at import (alignjax/_xla_flags.py), never over the user's."""

import os
import subprocess
import sys

import jax

from alignjax import _xla_flags

FLAG = _xla_flags.CPU_FLAGS[0]


def flags_after_import(**env):
    e = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'ALIGNJAX_XLA_DEFAULTS')}
    e.update(env, JAX_PLATFORMS='cpu')
    code = 'import os, alignjax, jax; jax.devices(); print(repr(os.environ.get("XLA_FLAGS")))'
    out = subprocess.run([sys.executable, '-c', code], env=e, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return eval(out.stdout.strip().splitlines()[-1])


def test_import_adds_the_flag_and_keeps_the_users():
    assert flags_after_import(XLA_FLAGS='--xla_force_host_platform_device_count=2').split() == [
        '--xla_force_host_platform_device_count=2',
        FLAG,
    ]
    assert flags_after_import() == FLAG


def test_users_own_value_and_opt_out_win():
    own = FLAG.split('=')[0] + '=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT'
    assert flags_after_import(XLA_FLAGS=own) == own
    assert flags_after_import(ALIGNJAX_XLA_DEFAULTS='0') is None


def test_too_late_once_a_backend_runs():
    jax.devices()
    env = {}
    assert _xla_flags.apply(env) == () and env == {}
