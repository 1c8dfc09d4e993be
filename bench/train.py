"""Benchmark training steps (all NVlabs phases, lazy regularisers at their real frequency).

    python bench/train.py                         # 64^2 with widths <= 128, then 256^2 'paper256'
    python bench/train.py --cases 64 --steps 32
    python bench/train.py --cases 64 --batch 8 --wgrad-ab xla,gemm --rounds 3   # A/B of Impl.wgrad, interleaved

For each case: compile time of the step's programs, then s/kimg and img/s over `--steps` steps (a multiple of
16, so Greg and Dreg run their share), and the process's peak RSS. On a GPU the device's peak memory is printed
too. 'paper256' is NVlabs' paper256 config (batch 64, half width, 8 mapping layers); --batch scales it down
for slow machines and the figure says so.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import jax
import numpy as np

import alignjax as aj
from alignjax.train import step as S

CASES = {
    '64': dict(
        res=64,
        g=dict(z_dim=512, w_dim=512, mapping_layers=8, channel_base=8192, channel_max=128),
        d=dict(channel_base=8192, channel_max=128, mbstd_group_size=4),
        hp=dict(batch=32, r1_gamma=0.0002 * 64**2 / 32, ema_kimg=10, g_lr=0.0025, d_lr=0.0025),
    ),
    '256': dict(
        res=256,
        g=dict(z_dim=512, w_dim=512, mapping_layers=8, channel_base=16384, channel_max=512),
        d=dict(channel_base=16384, channel_max=512, mbstd_group_size=8),
        hp=dict(batch=64, r1_gamma=1.0, ema_kimg=20, g_lr=0.0025, d_lr=0.0025),
    ),
}


def setup_case(name, batch=None, augment='none', wgrad=None):
    """Build and compile one case; returns (run(steps) -> seconds, compile seconds, batch size)."""
    c = CASES[name]
    hp = dict(c['hp'], augment=augment)
    if batch:
        hp['batch'] = batch
    impl = {} if wgrad is None else dict(impl=aj.Impl(wgrad=wgrad))
    g_cfg = aj.GeneratorConfig(resolution=c['res'], **c['g'], **impl)
    d_cfg = aj.DiscriminatorConfig(
        resolution=c['res'],
        **dict(c['d'], mbstd_group_size=min(c['d']['mbstd_group_size'], hp['batch'] // jax.device_count())),
        **impl,
    )
    fns = S.StepFns(g_cfg, d_cfg, S.TrainHParams(**hp))
    g = aj.new_generator(jax.random.key(0), config=g_cfg)
    d = aj.new_discriminator(jax.random.key(1), config=d_cfg)
    g_tx, d_tx = fns.optimizers(g.variables['params'], d.variables['params'])
    box = [fns.place(S.init_state(jax.random.key(2), g.variables, d.variables, g.variables, g_tx, d_tx))]
    rng = np.random.RandomState(0)
    batch_np = rng.randint(0, 256, (hp['batch'], c['res'], c['res'], 3)).astype(np.uint8)
    labels = np.zeros((hp['batch'], 0), np.float32)
    x, y = fns.shard_batch((batch_np, labels))

    def run(steps):
        t = time.perf_counter()
        for _ in range(steps):
            box[0], _m = fns.step(box[0], x, y)
        jax.block_until_ready(box[0])
        return time.perf_counter() - t

    compile_s = run(1)  # step 0 runs every phase: compiles all programs
    return run, compile_s, hp['batch']


def run_case(name, steps, batch=None, augment='none', wgrad=None):
    c = CASES[name]
    run, compile_s, b = setup_case(name, batch, augment, wgrad)
    dt = run(steps)
    img = steps * b
    mem = ''
    stats = jax.devices()[0].memory_stats() if hasattr(jax.devices()[0], 'memory_stats') else None
    if stats and 'peak_bytes_in_use' in stats:
        mem = f'  device peak {stats["peak_bytes_in_use"] / 2**30:.2f} GiB'
    print(
        f'{name}^2 batch {b} ({"scaled down from " + str(c["hp"]["batch"]) if batch else "as config"})'
        f'  augment={augment}: first step (compile + run) {compile_s:.1f} s; {steps} steps: '
        f'{dt / img * 1000:.1f} s/kimg, {img / dt:.2f} img/s{mem}; peak RSS '
        f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; load {os.getloadavg()[0]:.2f}',
        flush=True,
    )
    return img / dt


def compare_wgrad(name, steps, rounds, batch=None, variants=('xla', 'gemm')):
    """A/B of Impl.wgrad on full training steps: variants alternate, `steps` steps each per round."""
    runs = {}
    for v in variants:
        runs[v], comp, b = setup_case(name, batch, wgrad=v)
        print(f'{name}^2 batch {b} wgrad={v}: first step (compile + run) {comp:.1f} s', flush=True)
    ts = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants:
            ts[v].append(runs[v](steps) / (steps * b) * 1000)
            print(f'  round {r} wgrad={v}: {ts[v][-1]:.1f} s/kimg  (load {os.getloadavg()[0]:.2f})', flush=True)
    ref = np.array(ts[variants[0]])
    for v in variants:
        ratio = float(np.median(ref / np.array(ts[v])))
        print(f'{name}^2 batch {b} wgrad={v}: median {np.median(ts[v]):.1f} s/kimg, x{ratio:.2f} vs {variants[0]}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cases', default='64,256')
    p.add_argument('--steps', type=int, default=16)
    p.add_argument('--batch256', type=int, default=None, help='scale the 256^2 batch down (slow CPUs)')
    p.add_argument('--augment', default='none', choices=['none', 'ada'])
    p.add_argument('--batch', type=int, default=None, help='batch for every case (default: the case config)')
    p.add_argument('--wgrad-ab', default=None, help='comma-separated Impl.wgrad variants to A/B, e.g. xla,gemm')
    p.add_argument('--rounds', type=int, default=3, help='rounds of the --wgrad-ab comparison')
    a = p.parse_args(argv)
    print(f'device: {jax.devices()[0].device_kind} x{jax.device_count()}  jax {jax.__version__}')
    for name in a.cases.split(','):
        name = name.strip()
        batch = a.batch or (a.batch256 if name == '256' else None)
        if a.wgrad_ab:
            compare_wgrad(name, a.steps, a.rounds, batch, tuple(a.wgrad_ab.split(',')))
        else:
            run_case(name, a.steps, batch, a.augment)


if __name__ == '__main__':
    main()
