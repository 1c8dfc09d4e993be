"""Benchmark one training step on different topologies: 1 process x 4 devices vs 2 processes x 2 devices (and
1 x 1), the same config and global batch, through the real CLI (tests/multihost_worker.py -> alignjax-train).

    python bench/multihost.py                        # the test model (32x32, 8 channels, batch 8), 12 steps
    python bench/multihost.py --width 64 --batch 16 --steps 12 --topologies 1x4 2x2

On CPU the devices are --xla_force_host_platform_device_count fakes and the processes talk over gloo (TCP on
localhost); the step time is the median of the metrics.jsonl rows after the first (which is compiling), one row
per step. The load average is printed with each figure: on a shared machine it is part of the result.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(topology: str, width: int, batch: int, steps: int, workdir: Path) -> dict:
    nproc, ndev = (int(x) for x in topology.split('x'))
    args = [
        '--config',
        str(ROOT / 'tests' / 'fault_harness.py'),
        '--config.data.resolution=32',
        f'--config.model.channel_max={width}',
        f'--config.model.channel_base={width * 32}',
        f'--config.train.batch={batch}',
        f'--config.train.kimg={steps * batch / 1000}',
        f'--config.log.tick_kimg={batch / 1000}',
        f'--config.log.snapshot_kimg={10 * steps * batch / 1000}',
        f'--workdir={workdir}',
    ]
    env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={ndev}', JAX_PLATFORMS='cpu')
    port = free_port()
    procs = []
    t0 = time.time()
    for i in range(nproc):
        mh = [f'--coordinator=127.0.0.1:{port}', f'--num_processes={nproc}', f'--process_id={i}'] if nproc > 1 else []
        procs.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / 'tests' / 'multihost_worker.py'), *args, *mh],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        )
    errs = [p.communicate()[1] for p in procs]
    wall = time.time() - t0
    if any(p.returncode for p in procs):
        raise SystemExit(f'{topology} failed:\n' + '\n'.join(e[-2000:] for e in errs))
    rows = [json.loads(s) for s in (workdir / 'metrics.jsonl').read_text().splitlines()]
    step_s = [r['sec_per_kimg'] * batch / 1000 for r in rows[1:]]
    return dict(
        topology=topology,
        width=width,
        batch=batch,
        steps=steps,
        step_s=statistics.median(step_s),
        step_s_min=min(step_s),
        first_step_s=rows[0]['sec_per_kimg'] * batch / 1000,
        wall_s=wall,
        load=os.getloadavg()[0],
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--width', type=int, default=8, help='channels at every resolution (32x32 model)')
    ap.add_argument('--batch', type=int, default=8, help='global batch')
    ap.add_argument('--steps', type=int, default=12)
    ap.add_argument('--topologies', nargs='+', default=['1x4', '2x2', '1x1'], help='PROCESSESxDEVICES')
    a = ap.parse_args()
    print(f'{os.cpu_count()} CPU cores; 32x32, {a.width} channels, global batch {a.batch}, {a.steps} steps')
    print('| topology | step (median) | fastest step | first step (compile) | run wall | load avg |')
    print('|---|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as tmp:
        for t in a.topologies:
            r = run(t, a.width, a.batch, a.steps, Path(tmp) / t)
            print(
                f'| {t.replace("x", " x ")} | {r["step_s"]:.3f} s | {r["step_s_min"]:.3f} s | '
                f'{r["first_step_s"]:.0f} s | {r["wall_s"]:.0f} s | {r["load"]:.1f} |',
                flush=True,
            )


if __name__ == '__main__':
    main()
