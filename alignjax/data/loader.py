"""grain pipeline: seeded per-epoch shuffle, per-host sharding, batching, prefetch.

The sampler works like NVlabs' ``InfiniteSampler`` (without the window):
every epoch is a fresh permutation of the *whole* dataset drawn from
``(seed, epoch)``, and host ``s`` of ``S`` takes positions ``s, s+S, s+2S, ...``
of that global order. All hosts therefore agree on the order, their shards are
disjoint, and together they cover each epoch (up to the ``< S`` remainder when
``num_epochs`` is finite).

The iterator is grain's ``DataLoaderIterator``: ``it.get_state()`` returns
JSON bytes and ``it.set_state(state)`` on a fresh loader built the same way
resumes with exactly the batches the old one would have produced next.
Restoring into a loader over a different dataset, seed or shard layout is
refused by grain (it compares ``repr``\\ s of sampler and source).

``global_batches=True`` (what the trainer uses) lays the global order out in
global batches instead: global batch ``k`` is positions ``[k*B, (k+1)*B)``
with ``B = batch_size * shard_count``, and host ``s`` reads rows
``[s*batch_size, (s+1)*batch_size)`` of it, in order, whatever the number of
grain workers. The global batch (as the hosts' blocks form it on the device
mesh) is then the same for any host and worker count, so a run can continue
on another topology: :func:`state_at` gives the iterator state of a loader
that has served ``k`` batches, without reading them.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading

import grain.python as grain
import jax
import numpy as np

__all__ = ['EpochShuffleSampler', 'make_loader', 'epoch_permutation', 'state_at']


def epoch_permutation(num_records: int, seed: int, epoch: int) -> np.ndarray:
    """The global order of records in ``epoch`` (same on every host)."""
    return np.random.default_rng([int(seed), int(epoch), 0x5EED]).permutation(num_records)


class EpochShuffleSampler:
    """grain ``Sampler``: global index ``g`` -> record ``perm(g // N)[g % N]``.

    grain's ``DataLoader`` asks shard ``s`` of ``S`` for global indices
    ``i * S + s``, so shards interleave over one shared order.
    """

    def __init__(
        self,
        num_records: int,
        *,
        seed: int,
        shuffle: bool = True,
        num_epochs: int | None = None,
        shard_count: int = 1,
        global_batches: tuple[int, int] | None = None,
    ):
        # global_batches=(batch_size, workers): grain index -> position in the global order of whole global
        # batches (module docstring); None: position = grain index (hosts interleave).
        if global_batches is not None and num_epochs is not None:
            raise ValueError('global_batches needs num_epochs=None (an endless stream)')
        self._blocks = (
            None
            if global_batches is None
            else (int(global_batches[0]), int(shard_count), max(int(global_batches[1]), 1))
        )
        if num_records <= 0:
            raise ValueError('cannot sample from an empty dataset')
        if num_epochs is not None and num_epochs <= 0:
            raise ValueError(f'num_epochs must be positive or None, got {num_epochs}')
        self._n = int(num_records)
        self._seed = int(seed)
        self._shuffle = bool(shuffle)
        self._num_epochs = num_epochs
        # Finite runs: every shard gets the same count (drop the < S remainder).
        self._len = sys.maxsize if num_epochs is None else (self._n * num_epochs // shard_count) * shard_count
        self._cache: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_lock'] = None
        state['_cache'] = collections.OrderedDict()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        blocks = ''
        if self._blocks is not None:
            blocks = ', global_batches=(batch={}, hosts={}, workers={})'.format(*self._blocks)
        return (
            f'EpochShuffleSampler(num_records={self._n}, seed={self._seed}, '
            f'shuffle={self._shuffle}, num_epochs={self._num_epochs}{blocks})'
        )

    def position(self, index: int) -> int:
        """The position in the global order of grain index ``index``."""
        if self._blocks is None:
            return int(index)
        b, hosts, workers = self._blocks
        # grain: host s, worker w, worker-local record i -> index (i * workers + w) * hosts + s; each worker
        # batches its own consecutive records and the host takes the workers' batches round-robin.
        rest, s = divmod(int(index), hosts)
        i, w = divmod(rest, workers)
        m, j = divmod(i, b)
        k = m * workers + w  # the host's batch number = the global batch number
        return (k * hosts + s) * b + j

    def _perm(self, epoch: int) -> np.ndarray:
        with self._lock:
            p = self._cache.get(epoch)
            if p is None:
                p = epoch_permutation(self._n, self._seed, epoch)
                self._cache[epoch] = p
                while len(self._cache) > 3:  # prefetch may straddle epochs
                    self._cache.popitem(last=False)
            return p

    def __getitem__(self, index: int) -> grain.RecordMetadata:
        if index < 0 or index >= self._len:
            raise IndexError(f'sampler index {index} out of range [0, {self._len})')
        epoch, pos = divmod(self.position(index), self._n)
        key = int(self._perm(epoch)[pos]) if self._shuffle else pos
        return grain.RecordMetadata(index=index, record_key=key, rng=None)


class _StackBatch:
    """Batch dicts of arrays; like grain's default, it writes into shared
    memory when grain asks (worker processes), except for zero-size leaves such
    as the empty label of an unconditional dataset, which shared memory cannot
    hold."""

    def __init__(self):
        self._shm = False

    def enable_shared_memory_output(self):
        self._shm = True

    def _stack(self, xs):
        first = np.asarray(xs[0])
        if self._shm and first.size and not first.dtype.hasobject:
            out = grain.SharedMemoryArray((len(xs),) + first.shape, dtype=first.dtype)
            return np.stack(xs, out=out)
        return np.stack(xs)

    def __call__(self, values):
        return {k: self._stack([v[k] for v in values]) for k in values[0]}


def _default_shard() -> tuple[int, int]:
    return jax.process_index(), jax.process_count()


def make_loader(
    source,
    *,
    batch_size: int,
    seed: int,
    shard_index: int | None = None,
    shard_count: int | None = None,
    num_epochs: int | None = None,
    shuffle: bool = True,
    drop_remainder: bool = True,
    worker_count: int = 0,
    prefetch: int = 64,
    read_threads: int | None = None,
    global_batches: bool = False,
) -> grain.DataLoaderIterator:
    """An iterator of ``dict(image=uint8[B,R,R,3], label=float32[B,c])`` batches.

    It is grain's ``DataLoaderIterator``: ``get_state() -> bytes`` (JSON) and
    ``set_state(bytes)``; a fresh iterator made with the same arguments and
    given a saved state continues exactly where the saved one stood. The
    underlying ``grain.DataLoader`` is ``make_loader(...).loader``.

    Args:
      source: an :class:`~alignjax.data.ImageDataset` (or any grain
        random-access source of such dicts).
      batch_size: per-host batch size; the trainer splits it across devices.
      seed: shuffle seed, identical on all hosts.
      shard_index, shard_count: this host's shard (default: JAX process index
        and count).
      num_epochs: ``None`` repeats forever.
      shuffle: reshuffle every epoch (otherwise storage order).
      drop_remainder: drop a last partial batch (finite runs only).
      worker_count: grain worker processes (0 = decode in threads of this
        process). Workers need absl flags to be parsed; done here if needed.
      prefetch: records read ahead per process (and, with workers, batches
        buffered per worker ``= max(1, prefetch // batch_size)``).
      read_threads: reader threads per process; default 0 for in-memory
        sources (no decode work, avoid GIL contention), else ``min(16, 2 * cpus)``.
      global_batches: lay the order out in global batches of
        ``batch_size * shard_count`` (host ``s`` reads block ``s`` of each); the
        stream is then independent of host and worker counts (needs
        ``num_epochs=None``). See the module docstring and :func:`state_at`.
    """
    if batch_size <= 0:
        raise ValueError(f'batch_size must be positive, got {batch_size}')
    if shard_index is None or shard_count is None:
        di, dc = _default_shard()
        shard_index = di if shard_index is None else shard_index
        shard_count = dc if shard_count is None else shard_count
    if not 0 <= shard_index < shard_count:
        raise ValueError(f'shard_index {shard_index} not in [0, {shard_count})')
    n = len(source)
    if n < shard_count:
        raise ValueError(f'dataset of {n} images cannot be split into {shard_count} shards')
    if read_threads is None:
        read_threads = 0 if getattr(source, 'in_memory', False) else min(16, 2 * (os.cpu_count() or 1))
    if worker_count:
        from absl import flags

        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
    sampler = EpochShuffleSampler(
        n,
        seed=seed,
        shuffle=shuffle,
        num_epochs=num_epochs,
        shard_count=shard_count,
        global_batches=(batch_size, worker_count) if global_batches else None,
    )
    loader = grain.DataLoader(
        data_source=source,
        sampler=sampler,
        operations=[grain.Batch(batch_size=batch_size, drop_remainder=drop_remainder, batch_fn=_StackBatch())],
        worker_count=worker_count,
        worker_buffer_size=max(1, prefetch // batch_size),
        shard_options=grain.ShardOptions(shard_index=shard_index, shard_count=shard_count, drop_remainder=True),
        read_options=grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch),
    )
    it = iter(loader)
    it.loader = loader
    it.layout = dict(
        batch_size=int(batch_size),
        shard_index=int(shard_index),
        shard_count=int(shard_count),
        worker_count=int(worker_count),
        global_batches=bool(global_batches),
    )
    return it


def state_at(it: grain.DataLoaderIterator, batches: int) -> bytes:
    """The ``get_state()`` a loader built like ``it`` (by :func:`make_loader`) has after serving ``batches``
    batches, computed from grain's index arithmetic without reading any record; ``it.set_state`` of it
    continues at batch ``batches``. With ``global_batches=True`` that is global batch ``batches`` of the stream
    whatever the host and worker counts that served the first ones."""

    lay = it.layout
    b, s, hosts, workers = lay['batch_size'], lay['shard_index'], lay['shard_count'], lay['worker_count']
    state = json.loads(it.get_state())
    if workers == 0:
        state['last_seen_indices'] = {'0': (batches * b - 1) * hosts + s}
        state['last_worker_index'] = -1
    else:
        total = workers * hosts
        seen = {}
        for w in range(workers):
            served = max(0, -(-(batches - w) // workers))  # batches worker w produced: k < batches, k % W == w
            seen[str(w)] = served * b * total + w * hosts + s - total
        state['last_seen_indices'] = seen
        state['last_worker_index'] = (batches - 1) % workers if batches else -1
    return json.dumps(state, indent=4).encode()
