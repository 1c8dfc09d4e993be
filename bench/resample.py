"""A/B of the up/down-sampling conv formulations, one conv at a time (forward; first order; second order as R1).

    python bench/resample.py                 # the 64^2 training config's resample convs (base 4096, max 128), b8
    python bench/resample.py --batch 32 --rounds 5

Each row is one resample conv of that config: down-convs of D (the FIR-padded input size, channels) and
up-convs of G (input size). The variants alternate within each round, one computing at a time; the ratio
is the median over rounds of the first variant's time / the second's (> 1: the second is faster).
'fwd' is the conv, 'bwd' the gradient of sum(tanh(y)) wrt input and kernel, 'r1' the kernel gradient of the
squared input gradient (what R1 and path length differentiate). The load average is printed per row.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from alignjax.nn import ops

# (kind, input size, in channels, out channels) of the 64^2 config with channel_base 4096, channel_max 128
CONVS = [
    ('down', 65, 64, 128),
    ('down', 33, 128, 128),
    ('down', 17, 128, 128),
    ('down', 9, 128, 128),
    ('up', 4, 128, 128),
    ('up', 8, 128, 128),
    ('up', 16, 128, 128),
    ('up', 32, 128, 64),
]
VARIANTS = {
    'down': {'s2d': ops._conv2d_stride2_s2d_conv, 'split': ops._conv2d_stride2_split},
    'up': {'phase': ops._conv_transpose3_stride2_phase_conv, 'split': ops._conv_transpose3_stride2_split},
}


def program(f, mode):
    if mode == 'fwd':
        return jax.jit(lambda x, w: jnp.sum(f(x, w)))
    if mode == 'bwd':
        return jax.jit(jax.grad(lambda x, w: jnp.sum(jnp.tanh(f(x, w))), argnums=(0, 1)))

    def r1(x, w):
        return jnp.sum(jax.grad(lambda x: jnp.sum(jnp.tanh(f(x, w))))(x) ** 2)

    return jax.jit(jax.grad(r1, argnums=1))


def ms(fn, x, w, reps):
    t = time.perf_counter()
    for _ in range(reps):
        out = fn(x, w)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / reps * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--rounds', type=int, default=3)
    a = p.parse_args(argv)
    print(f'device: {jax.devices()[0].device_kind} x{jax.device_count()}  jax {jax.__version__}  batch {a.batch}')
    for kind, size, ci, co in CONVS:
        x = jax.random.normal(jax.random.key(0), (a.batch, size, size, ci))
        w = jax.random.normal(jax.random.key(1), (3, 3, ci, co)) * 0.05
        (na, fa), (nb, fb) = VARIANTS[kind].items()
        reps = max(2, 2000 * 64 // (size * size * ci) // a.batch)
        cells = []
        for mode in ('fwd', 'bwd', 'r1'):
            pa, pb = program(fa, mode), program(fb, mode)
            jax.block_until_ready((pa(x, w), pb(x, w)))
            ta, tb = [], []
            for _ in range(a.rounds):
                ta.append(ms(pa, x, w, reps))
                tb.append(ms(pb, x, w, reps))
            ratio = float(np.median(np.array(ta) / np.array(tb)))
            cells.append(f'{mode} {np.median(ta):6.2f} -> {np.median(tb):6.2f} ms x{ratio:.2f}')
        print(
            f'{kind:4s} {size:2d}^2 {ci:3d}->{co:3d} {na} -> {nb}: '
            + ' | '.join(cells)
            + f'  (load {os.getloadavg()[0]:.2f})',
            flush=True,
        )


if __name__ == '__main__':
    main()
