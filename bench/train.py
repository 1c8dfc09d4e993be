"""Benchmark training steps (all NVlabs phases, lazy regularisers at their real frequency).

    python bench/train.py                         # 64^2 with widths <= 128, then 256^2 'paper256'
    python bench/train.py --cases 64 --steps 32
    python bench/train.py --cases 64 --batch 8 --impl-ab wgrad=xla,wgrad=gemm --rounds 3   # A/B of Impl fields
    python bench/train.py --cases 64 --batch 8 --impl-ab upconv=phase+downconv=s2d,upconv=split+downconv=split
    python bench/train.py --cases 64 --batch 8 --channel-base 4096 --phases   # FLOPs and GFLOP/s per phase

For each case: compile time of the step's programs, then s/kimg and img/s over `--steps` steps (a multiple of
16, so Greg and Dreg run their share), and the process's peak RSS. On a GPU the device's peak memory is printed
too. 'paper256' is NVlabs' paper256 config (batch 64, half width, 8 mapping layers); --batch scales it down
for slow machines and the figure says so.
"""

from __future__ import annotations

import argparse
import dataclasses
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


def setup_case(name, batch=None, augment='none', impl=None, channel_base=None, phases=False):
    """Build and compile one case; returns (run(steps) -> seconds, compile seconds, batch size), or with
    `phases` (StepFns, state, batch) for `phase_costs`."""
    c = CASES[name]
    if channel_base:
        c = dict(c, g=dict(c['g'], channel_base=channel_base), d=dict(c['d'], channel_base=channel_base))
    hp = dict(c['hp'], augment=augment)
    if batch:
        hp['batch'] = batch
    impl = {} if not impl else dict(impl=aj.Impl(**impl))
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
    if phases:
        return fns, box[0], (x, y)

    def run(steps):
        t = time.perf_counter()
        for _ in range(steps):
            box[0], _m = fns.step(box[0], x, y)
        jax.block_until_ready(box[0])
        return time.perf_counter() - t

    compile_s = run(1)  # step 0 runs every phase: compiles all programs
    return run, compile_s, hp['batch']


def run_case(name, steps, batch=None, augment='none', channel_base=None):
    c = CASES[name]
    run, compile_s, b = setup_case(name, batch, augment, channel_base=channel_base)
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


def phase_costs(name, batch=None, channel_base=None, rounds=3):
    """Per phase: XLA's FLOP count of the compiled program, its best time over `rounds` runs and GFLOP/s."""
    fns, state, (x, y) = setup_case(name, batch, channel_base=channel_base, phases=True)
    b = x.shape[0]
    programs = dict(Gmain=(fns._jg_main, (x, y)), Greg=(fns._jg_reg, (y,)), Dmain=(fns._jd_main, (x, y)))
    programs['Dreg'] = (fns._jd_reg, (x, y))
    for phase, (fn, args) in programs.items():
        compiled = fn.lower(state, *args).compile()
        cost = compiled.cost_analysis()
        flops = float((cost[0] if isinstance(cost, list) else cost)['flops'])
        times = []
        for _ in range(rounds + 1):  # the first run warms up; the state is donated, so each run gets a copy
            fresh = jax.tree_util.tree_map(lambda a: a.copy(), state)
            t = time.perf_counter()
            jax.block_until_ready(compiled(fresh, *args))
            times.append(time.perf_counter() - t)
        t = min(times[1:])
        print(
            f'{name}^2 batch {b} {phase}: {flops / 1e9:.1f} GFLOP, {t * 1e3:.0f} ms ({t / b * 1e3:.1f} ms/img), '
            f'{flops / t / 1e9:.0f} GFLOP/s  (load {os.getloadavg()[0]:.2f})',
            flush=True,
        )


def parse_impl(variant: str) -> dict:
    """'upconv=split+downconv=split' -> {'upconv': 'split', 'downconv': 'split'} (Impl fields)."""
    fields = {f.name for f in dataclasses.fields(aj.Impl)}
    out = {}
    for item in variant.split('+'):
        k, sep, v = item.partition('=')
        if not sep or k not in fields:
            raise SystemExit(f'--impl-ab: {item!r} is not FIELD=VALUE with FIELD one of {sorted(fields)}')
        out[k] = v
    return out


def compare_impl(name, steps, rounds, batch=None, variants=('wgrad=xla', 'wgrad=gemm'), channel_base=None):
    """A/B of Impl fields on full training steps: variants alternate, `steps` steps each per round."""
    runs = {}
    for v in variants:
        runs[v], comp, b = setup_case(name, batch, impl=parse_impl(v), channel_base=channel_base)
        print(f'{name}^2 batch {b} {v}: first step (compile + run) {comp:.1f} s', flush=True)
    ts = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants:
            ts[v].append(runs[v](steps) / (steps * b) * 1000)
            print(f'  round {r} {v}: {ts[v][-1]:.1f} s/kimg  (load {os.getloadavg()[0]:.2f})', flush=True)
    ref = np.array(ts[variants[0]])
    for v in variants:
        ratio = float(np.median(ref / np.array(ts[v])))
        print(f'{name}^2 batch {b} {v}: median {np.median(ts[v]):.1f} s/kimg, x{ratio:.2f} vs {variants[0]}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cases', default='64,256')
    p.add_argument('--steps', type=int, default=16)
    p.add_argument('--batch256', type=int, default=None, help='scale the 256^2 batch down (slow CPUs)')
    p.add_argument('--augment', default='none', choices=['none', 'ada'])
    p.add_argument('--batch', type=int, default=None, help='batch for every case (default: the case config)')
    p.add_argument('--impl-ab', default=None, help='comma-separated Impl variants to A/B, e.g. wgrad=xla,wgrad=gemm')
    p.add_argument('--rounds', type=int, default=3, help='rounds of the --impl-ab / --phases timing')
    p.add_argument('--channel-base', type=int, default=None, help="override the case's channel_base")
    p.add_argument('--phases', action='store_true', help='per phase: XLA FLOP count, time and GFLOP/s')
    a = p.parse_args(argv)
    print(f'device: {jax.devices()[0].device_kind} x{jax.device_count()}  jax {jax.__version__}')
    for name in a.cases.split(','):
        name = name.strip()
        batch = a.batch or (a.batch256 if name == '256' else None)
        if a.phases:
            phase_costs(name, batch, a.channel_base, a.rounds)
        elif a.impl_ab:
            compare_impl(name, a.steps, a.rounds, batch, tuple(a.impl_ab.split(',')), a.channel_base)
        else:
            run_case(name, a.steps, batch, a.augment, a.channel_base)


if __name__ == '__main__':
    main()
