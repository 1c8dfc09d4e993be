"""Benchmark the jit-compiled generator forward (mapping + synthesis) for each implementation variant.

    python bench/generator.py                       # 256^2, channel_base 16384, channel_max 512, batch 8, fp32
    python bench/generator.py --res 64 --variants shared/upfir/polyphase,grouped/transpose/depthwise

Prints images/s, compile time and memory for each variant, and each variant's speed as a ratio to the
reference variant (grouped/transpose/depthwise, i.e. NVlabs' op order) measured in the same run.
Memory: XLA's own accounting of the compiled program (arguments + outputs + temporaries), and the
process's peak RSS so far.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import time

import jax
import numpy as np

import alignjax as aj

ALL = [
    f'{m}/{u}/{f}'
    for m, u, f in itertools.product(
        ['shared', 'grouped'], ['split', 'phase', 'upfir', 'transpose'], ['polyphase', 'depthwise']
    )
]
REFERENCE = 'grouped/transpose/depthwise'


def bench_variant(gen, z, variant, min_time, max_reps, dtype):
    m, u, f = variant.split('/')
    g = gen.with_impl(modconv=m, upconv=u, fir=f, dtype=dtype)

    def fwd(g, z):
        return g.synthesis(g.mapping(z), noise_mode='const')

    t0 = time.perf_counter()
    compiled = jax.jit(fwd).lower(g, z).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    mem_bytes = None
    if mem is not None:
        mem_bytes = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
    compiled(g, z).block_until_ready()  # warm-up
    times = []
    t_start = time.perf_counter()
    while len(times) < max_reps and (time.perf_counter() - t_start < min_time or len(times) < 2):
        t = time.perf_counter()
        compiled(g, z).block_until_ready()
        times.append(time.perf_counter() - t)
    best = float(np.median(times))
    return dict(
        variant=variant,
        img_s=z.shape[0] / best,
        s_per_batch=best,
        reps=len(times),
        compile_s=compile_s,
        xla_mem_mb=None if mem_bytes is None else mem_bytes / 2**20,
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--res', type=int, default=256)
    p.add_argument('--channel-base', type=int, default=16384)
    p.add_argument('--channel-max', type=int, default=512)
    p.add_argument('--mapping-layers', type=int, default=8)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
    p.add_argument('--variants', default=','.join(ALL), help=f'comma-separated modconv/upconv/fir; all: {ALL}')
    p.add_argument('--min-time', type=float, default=10.0, help='seconds of timed runs per variant (at least 2)')
    p.add_argument('--max-reps', type=int, default=20)
    a = p.parse_args(argv)

    gen = aj.new_generator(
        jax.random.key(0),
        resolution=a.res,
        channel_base=a.channel_base,
        channel_max=a.channel_max,
        mapping_layers=a.mapping_layers,
    )
    z = jax.random.normal(jax.random.key(1), (a.batch, gen.config.z_dim))
    print(
        f'device: {jax.devices()[0].device_kind} x{jax.device_count()}  jax {jax.__version__}  '
        f'res {a.res}  channels {gen.config.channels}  batch {a.batch}  {a.dtype}'
    )
    variants = [v.strip() for v in a.variants.split(',') if v.strip()]
    rows = []
    for v in variants:
        r = bench_variant(gen, z, v, a.min_time, a.max_reps, a.dtype)
        rows.append(r)
        mem = 'n/a' if r['xla_mem_mb'] is None else f'{r["xla_mem_mb"]:.0f} MB'
        print(
            f'{v:30s} {r["img_s"]:8.3f} img/s  ({r["s_per_batch"]:.3f} s/batch, {r["reps"]} reps)  '
            f'compile {r["compile_s"]:.1f} s  xla mem {mem}',
            flush=True,
        )
    ref = next((r for r in rows if r['variant'] == REFERENCE), rows[0])
    print(f'\nspeed relative to {ref["variant"]} (same run):')
    for r in rows:
        print(f'  {r["variant"]:30s} x{r["img_s"] / ref["img_s"]:.2f}')
    print(f'peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB')


if __name__ == '__main__':
    main()
