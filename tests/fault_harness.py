"""The fault-injection harness of tests/test_faults.py: a tiny training config (this file is also a train.py
--config file), train.py subprocesses with their own timeouts and messages, and final-model comparison.

    python train.py --config tests/fault_harness.py --workdir /tmp/run        # ~12 steps, snapshots every 2
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from alignjax.train.config import base_config

ROOT = Path(__file__).resolve().parents[1]
STEPS, BATCH, SNAP_EVERY = 12, 8, 2  # 12 steps of 8 images, a snapshot every 2 steps (keep 3)


def get_config():
    c = base_config()
    c.name = 'faults'
    c.data.spec = 'proc:faces?n=32'
    c.data.resolution = 8
    c.model.z_dim = c.model.w_dim = 16
    c.model.mapping_layers = 1
    c.model.channel_base = 128
    c.model.channel_max = 8
    c.model.mbstd_group_size = 4
    c.train.batch = BATCH
    c.train.kimg = STEPS * BATCH / 1000
    c.train.r1_gamma = 1.0
    c.train.r1_interval = 4  # lazy R1 every 4 steps: resume must pick the same phases
    c.train.pl_weight = 0.0  # (path length: see tests/test_train.py's kill/resume test)
    c.train.ema_kimg = 0.01
    c.log.tick_kimg = BATCH / 1000  # a metrics row per step
    c.log.snapshot_kimg = SNAP_EVERY * BATCH / 1000
    c.log.grid_kimg = 1000.0  # grids only at start and end
    c.log.grid_size = 4
    c.log.grid_cols = 4
    c.log.keep = 3
    return c


def timeout_s(base: float) -> float:
    """`base` seconds on an idle machine, scaled by the load per core (the machine is shared), capped at 30 min."""
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        load = 1.0
    return min(base * max(1.0, load), 1800.0)


def train_cmd(workdir, *overrides, config=None):
    return [
        sys.executable,
        str(ROOT / 'train.py'),
        '--config',
        str(config or Path(__file__).resolve()),
        f'--workdir={workdir}',
        *overrides,
    ]


def run_train(workdir, *overrides, fault=None, base_timeout=240, config=None, expect=None, what='train.py'):
    """Run train.py in its own process group; returns the CompletedProcess. `expect`: the exit code asserted."""
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    env.pop('ALIGNJAX_FAULT', None)
    if fault:
        env['ALIGNJAX_FAULT'] = fault
    cmd = train_cmd(workdir, *overrides, config=config)
    limit = timeout_s(base_timeout)
    p = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(
            f'{what} ({fault or "no fault"}) did not finish within {limit:.0f} s (load average '
            f'{os.getloadavg()[0]:.1f}): {" ".join(cmd)}\n--- stdout\n{out[-2000:]}\n--- stderr\n'
            f'{err[-2000:]}'
        ) from None
    res = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    if expect is not None:
        assert p.returncode == expect, (
            f'{what} ({fault or "no fault"}) exited {p.returncode}, expected {expect}: '
            f'{" ".join(cmd)}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}'
        )
    return res


def committed(workdir) -> list[int]:
    d = Path(workdir) / 'checkpoints'
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def final_nets(workdir):
    import jax

    import alignjax as aj

    ck = aj.load_checkpoint(Path(workdir) / 'final')
    return {k: jax.tree_util.tree_leaves(v) for k, v in ck.nets.items()}, ck


def assert_same_final(a, b):
    na, _ = final_nets(a)
    nb, _ = final_nets(b)
    import numpy as np

    assert set(na) == set(nb) == {'G', 'G_ema', 'D'}
    for net in ('G', 'G_ema', 'D'):
        assert len(na[net]) == len(nb[net])
        for i, (x, y) in enumerate(zip(na[net], nb[net])):
            assert x.dtype == y.dtype and np.array_equal(x, y), f'{net} leaf {i} differs between {a} and {b}'
