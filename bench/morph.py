"""Benchmark cross-domain morphing: frames/s of the batched fused renderer vs per-frame weight reload.

    python bench/morph.py                                 # 64^2, 128 channels, 110 frames, chunk auto
    python bench/morph.py --res 256 --channel-max 512 --frames 110 --chunk 32 --impls fused,vmap,reload
    python bench/morph.py --ckpt assets/demo/parent       # a checkpoint's G_ema (child: a perturbed copy)

Baseline ('reload'): for every frame, lerp all synthesis weights (one jitted call, on device) and render that
frame alone. 'reload-host' lerps the weights in numpy on the host and uploads them per frame -- literally what
StyleAlign's MergeFace.py does with tflib.set_vars. 'fused': frames batched `chunk` at a time (default
'auto': alignjax.apps.morph.frames_per_call) with per-frame weights folded into two shared-weight
convolutions per layer (alignjax.apps.blend).
'vmap': frames batched with per-frame weights under jax.vmap (XLA grouped convolutions). Every figure is a
ratio against the baseline measured in the same run (after a warm-up that compiles everything).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import alignjax as aj
from alignjax.apps.morph import frames_per_call, morph
from alignjax.invert.project import Latents


def perturbed(gen, scale=0.2, seed=1):
    leaves, tdef = jax.tree_util.tree_flatten(gen.variables['params']['synthesis'])
    rng = np.random.RandomState(seed)
    new = [l + scale * np.asarray(rng.randn(*np.shape(l)), np.float32) * np.std(l) for l in leaves]
    v = dict(gen.variables)
    v['params'] = dict(v['params'])
    v['params']['synthesis'] = jax.tree_util.tree_unflatten(tdef, new)
    return gen.with_variables(v)


def reload_host(parent, child, src, tgt, frames):
    """Per frame: numpy lerp of every variable on the host, upload, render alone."""
    from alignjax.apps.morph import endpoints

    ws_a, ws_b, na, nb = (jax.tree_util.tree_map(np.asarray, x) for x in endpoints(parent, child, src, tgt))
    va = jax.tree_util.tree_map(np.asarray, parent.variables)
    vb = jax.tree_util.tree_map(np.asarray, child.variables)
    out = []
    for t in np.linspace(0, 1, frames, dtype=np.float32):
        v = jax.tree_util.tree_map(lambda a, b: (1 - t) * a + t * b, va, vb)
        v['params']['mapping'] = va['params']['mapping']
        g = parent.with_variables(jax.device_put(v))
        noise = {k: ((1 - t) * na[k] + t * nb[k])[:1] for k in na}
        out.append(np.asarray(g.synthesis((1 - t) * ws_a[:1] + t * ws_b[:1], noise=noise)))
    return np.stack(out, axis=1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', help="a checkpoint's G_ema as the parent (overrides --res and the widths)")
    p.add_argument('--res', type=int, default=64)
    p.add_argument('--channel-max', type=int, default=128)
    p.add_argument('--channel-base', type=int, default=None, help='default: channel_max * res / 4')
    p.add_argument('--w-dim', type=int, default=128)
    p.add_argument('--frames', type=int, default=110)
    p.add_argument('--chunk', default='auto', help="frames per compiled call, or 'auto' (morph's default)")
    p.add_argument(
        '--impls', default='fused,reload,reload-host', help='comma-separated: fused, vmap, reload, reload-host'
    )
    p.add_argument('--reps', type=int, default=2)
    a = p.parse_args(argv)
    base = a.channel_base or a.channel_max * a.res // 4
    if a.ckpt:
        parent = aj.load_checkpoint(a.ckpt).generator()
        a.res, a.w_dim, base, a.channel_max = (
            parent.resolution,
            parent.config.w_dim,
            parent.config.channel_base,
            parent.config.channel_max,
        )
    else:
        parent = aj.new_generator(
            jax.random.key(0),
            resolution=a.res,
            z_dim=a.w_dim,
            w_dim=a.w_dim,
            channel_base=base,
            channel_max=a.channel_max,
        )
    child = perturbed(parent)
    z = np.random.RandomState(0).randn(2, parent.z_dim).astype(np.float32)
    src = Latents(code=parent.mapping(z[:1]), space='w+')
    tgt = Latents(code=child.mapping(z[1:]), space='w+')
    chunk = a.chunk if a.chunk == 'auto' else int(a.chunk)
    print(
        f'device {jax.devices()[0].device_kind}, {a.res}x{a.res}, channels {base}//res max {a.channel_max}, '
        f'{a.frames} frames, chunk {a.chunk} ({frames_per_call(parent.config, a.frames, chunk)} per call)'
    )
    results = {}
    outs = {}
    for impl in [s.strip() for s in a.impls.split(',') if s.strip()]:
        run = (
            (lambda f: reload_host(parent, child, src, tgt, f))
            if impl == 'reload-host'
            else (lambda f, impl=impl: morph(parent, child, src, tgt, f, impl=impl, chunk=chunk))
        )
        t0 = time.perf_counter()
        run(a.frames if impl in ('fused', 'vmap') else 2)
        warm = time.perf_counter() - t0
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            out = run(a.frames)
            times.append(time.perf_counter() - t0)
        best = min(times)
        results[impl] = a.frames / best
        outs[impl] = out
        print(
            f'{impl:11s} {a.frames / best:9.1f} frames/s  ({best:.2f} s for {a.frames} frames; warm-up incl. '
            f'compile {warm:.1f} s)'
        )
    ref = next(iter(outs.values()))
    for impl, out in outs.items():
        print(f'{impl:11s} max |frame - {next(iter(outs))}| = {np.abs(out - ref).max():.2e}')
    base = 'reload' if 'reload' in results else next(iter(results))
    for impl, fps in results.items():
        print(f'{impl:11s} x{fps / results[base]:.2f} vs {base}')


if __name__ == '__main__':
    main()
