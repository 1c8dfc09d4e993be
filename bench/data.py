"""Benchmark the data side: procedural renderer and the zip loader.

    python bench/data.py                    # renderer at 64^2 (one core), loader from a 256^2 zip
    python bench/data.py --render-res 128 --zip-n 2000 --threads 0 4

Renderer: ``procedural.render`` on batches of ``--batch`` images, pinned to one
core (``os.sched_setaffinity``) and numpy's BLAS limited to one thread, best of
``--reps`` timed runs after a warm-up. Also reports per-item rendering (what an
on-the-fly ``proc:`` source does for each ``ds[i]``).

Loader: writes ``--zip-n`` procedural faces to an NVlabs-layout zip at
``--zip-res`` (PNG, compress level 0 like ``dataset_tool.py``), then times
``make_loader`` (streaming, i.e. PNG decode per item) end to end for each
reader-thread count in ``--threads``, plus an in-memory pass for reference.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')
os.environ.setdefault('OMP_NUM_THREADS', '1')


from alignjax.data import make_dataset, make_loader, procedural  # noqa: E402
from alignjax.data.export import export  # noqa: E402


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def bench_render(res: int, batch: int, reps: int) -> dict:
    """Wall-clock and CPU-time rates; on a shared machine the CPU-time rate is
    what one uncontended core delivers."""
    fac = procedural.sample_factors(0, batch)
    out = {}
    for d in procedural.DOMAINS:
        procedural.render(d, fac[:8], res, outputs=('image',))  # warm-up
        runs = [_timed(lambda: procedural.render(d, fac, res, outputs=('image',))) for _ in range(reps)]
        wall = min(r[0] for r in runs)
        cpu = min(r[1] for r in runs)
        full = _timed(lambda: procedural.render(d, fac, res))  # with landmarks + masks
        n1 = 32
        one = _timed(lambda: [procedural.render(d, fac[i : i + 1], res, outputs=('image',)) for i in range(n1)])
        out[d] = dict(wall=batch / wall, cpu=batch / cpu, full_cpu=batch / full[1], single_cpu=n1 / one[1])
        print(
            f'  {d:10s} {batch / wall:6.0f} img/s wall, {batch / cpu:6.0f} img/s cpu-time (image only); '
            f'{batch / full[1]:6.0f} with masks+landmarks; {n1 / one[1]:5.0f} one image at a time (cpu)',
            flush=True,
        )
    return out


def bench_loader(n: int, res: int, batch: int, threads: list[int], seconds: float) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f'faces{res}.zip')
        export(f'proc:faces?seed=0&n={n}', path, n=n, resolution=res, labels='none', verbose=False)
        size = os.path.getsize(path) / 2**20
        print(f'  zip: {n} PNGs at {res}x{res}, {size:.0f} MiB', flush=True)
        for th in threads:
            ds = make_dataset(f'zip:{path}', res, in_memory=False)
            it = make_loader(ds, batch_size=batch, seed=0, shard_index=0, shard_count=1, read_threads=th)
            next(it)  # start-up (threads, first reads)
            k, t = 0, time.perf_counter()
            while time.perf_counter() - t < seconds:
                next(it)
                k += 1
            rate = k * batch / (time.perf_counter() - t)
            out[f'stream/{th}'] = rate
            print(f'  streaming, {th:2d} reader threads: {rate:7.0f} img/s', flush=True)
        t = time.perf_counter()
        ds = make_dataset(f'zip:{path}', res, in_memory=True)
        load = time.perf_counter() - t
        it = make_loader(ds, batch_size=batch, seed=0, shard_index=0, shard_count=1)
        next(it)
        k, t = 0, time.perf_counter()
        while time.perf_counter() - t < seconds:
            next(it)
            k += 1
        rate = k * batch / (time.perf_counter() - t)
        out['memory'] = rate
        print(f'  in memory (decoded once in {load:.1f}s): {rate:7.0f} img/s', flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--render-res', type=int, default=64)
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--zip-n', type=int, default=1000)
    p.add_argument('--zip-res', type=int, default=256)
    p.add_argument('--loader-batch', type=int, default=32)
    p.add_argument('--threads', type=int, nargs='+', default=[0, 2, 8])
    p.add_argument('--seconds', type=float, default=4.0)
    p.add_argument('--skip-loader', action='store_true')
    a = p.parse_args(argv)

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else []
    print(f'host: {os.cpu_count()} cpus ({len(cpus)} usable)')
    if cpus:
        os.sched_setaffinity(0, {cpus[0]})
    print(f'renderer, {a.render_res}x{a.render_res}, batches of {a.batch}, one core:')
    bench_render(a.render_res, a.batch, a.reps)
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    if not a.skip_loader:
        print(f'loader, zip at {a.zip_res}x{a.zip_res}, batch {a.loader_batch}, all {len(cpus) or "?"} cores:')
        bench_loader(a.zip_n, a.zip_res, a.loader_batch, a.threads, a.seconds)


if __name__ == '__main__':
    main()
