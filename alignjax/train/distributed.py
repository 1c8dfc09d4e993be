"""Multi-host training on JAX's own multi-controller runtime (`jax.distributed`): start-up, once-only work and
the few cross-process agreements the training loop needs. There is no launcher or coordination of our own: every
process runs the same command, `jax.distributed.initialize` connects them, and XLA's collectives do the rest.

    from alignjax.train import distributed
    distributed.initialize()                                           # Cloud TPU, SLURM, Open MPI: auto-detected
    distributed.initialize('10.0.0.1:1234', num_processes=2, process_id=0)   # explicit (each process its own id)

A dead peer: JAX's coordination service stops every other process once the dead one has missed heartbeats for
`heartbeat_timeout_s` (immediately when the coordinator, process 0, dies); its message names the lost process
as a task number, which is the process id. A collective that fails first (a peer's socket closed) is reported
by `peer_failure` with the processes JAX no longer sees alive.
"""

from __future__ import annotations

import os
import re
import sys

import jax
import numpy as np
from jax._src import distributed as _d  # (the coordination client: barriers, live processes)
from jax.experimental import multihost_utils

from alignjax.errors import AlignjaxError

DEFAULT_HEARTBEAT_TIMEOUT_S = 60  # JAX's default is 100 s; a pod's compile or GC pause never blocks it
DEFAULT_INIT_TIMEOUT_S = 300  # how long the processes wait for each other at start-up


class DistributedError(AlignjaxError, RuntimeError):
    """jax.distributed could not start, or a peer process was lost during the run."""


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    heartbeat_timeout_s: int = DEFAULT_HEARTBEAT_TIMEOUT_S,
    init_timeout_s: int = DEFAULT_INIT_TIMEOUT_S,
) -> tuple[int, int]:
    """Connect this process to the others with `jax.distributed.initialize` (before any other JAX call).

    Explicit arguments win; anything left None is auto-detected by JAX (Cloud TPU VMs, SLURM, Open MPI,
    $JAX_COORDINATOR_ADDRESS / $JAX_LOCAL_DEVICE_IDS). On CPU the cross-process collectives use gloo.
    Returns (process index, process count); a second call in a process that is already connected is a no-op."""
    if is_initialized():
        return jax.process_index(), jax.process_count()
    if str(jax.config.jax_cpu_collectives_implementation or 'none') in ('', 'none'):
        jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # (only the CPU client uses it)
    kw = dict(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        heartbeat_timeout_seconds=int(heartbeat_timeout_s),
        initialization_timeout=int(init_timeout_s),
        # how long a finished process waits for the others at exit (JAX's default 300 s)
        shutdown_timeout_seconds=max(60, 2 * int(heartbeat_timeout_s)),
    )
    try:
        jax.distributed.initialize(**kw)
    except (RuntimeError, ValueError, TypeError) as e:
        given = ', '.join(
            f'{k}={v}'
            for k, v in (
                ('--coordinator', coordinator),
                ('--num_processes', num_processes),
                ('--process_id', process_id),
            )
            if v is not None
        )
        how = (
            f'with {given}'
            if given
            else (
                'with nothing given: JAX found no Cloud TPU, SLURM or Open MPI '
                'environment (pass --coordinator, --num_processes and --process_id)'
            )
        )
        raise DistributedError(f'jax.distributed.initialize failed {how}: {" ".join(str(e).split())}') from None
    return jax.process_index(), jax.process_count()


def is_initialized() -> bool:
    return getattr(_d.global_state, 'client', None) is not None


def is_main() -> bool:
    """Process 0: the one that writes logs, metrics, sample grids and the final export's metadata."""
    return jax.process_index() == 0


_BARRIERS = [0]
DEFAULT_BARRIER_TIMEOUT_S = 3600


def sync(name: str, timeout_s: float = DEFAULT_BARRIER_TIMEOUT_S):
    """Wait until every process reaches this point (no-op in a single-process run).

    A barrier of JAX's coordination service, not a device collective: on CPU a gloo collective gives up when
    the processes arrive more than 30 s apart (one compiling a program the other found in the persistent
    cache, or writing a sample grid), a barrier waits up to `timeout_s`; a dead peer still ends it through
    the heartbeat check."""
    if jax.process_count() == 1:
        return
    _BARRIERS[0] += 1  # every process passes the same barriers in the same order
    _d.global_state.client.wait_at_barrier(f'alignjax:{_BARRIERS[0]}:{name}', int(timeout_s * 1000))


def any_process(flag: bool) -> bool:
    """True on every process when `flag` is true on any of them (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return bool(flag)
    return bool(np.any(multihost_utils.process_allgather(np.int32(bool(flag)))))


def allgather_bytes(data: bytes) -> list[bytes]:
    """Every process's `data`, in process order (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return [bytes(data)]
    lengths = np.asarray(multihost_utils.process_allgather(np.int32(len(data)))).reshape(-1)
    buf = np.zeros(int(lengths.max()), np.uint8)
    buf[: len(data)] = np.frombuffer(data, np.uint8)
    rows = np.asarray(multihost_utils.process_allgather(buf)).reshape(len(lengths), -1)
    return [rows[i, : int(n)].tobytes() for i, n in enumerate(lengths)]


def live_processes() -> list[int] | None:
    """The process ids JAX's coordination service sees alive (None when it cannot be asked: the coordinator,
    process 0, is gone)."""
    client = getattr(_d.global_state, 'client', None)
    if client is None:
        return None
    try:
        return sorted(int(k) for k in client.get_live_nodes(list(range(jax.process_count()))))
    except Exception:  # noqa: BLE001 (the service is unreachable: its host died)
        return None


_PEER_ERROR = re.compile(
    r'gloo|connection (?:closed|reset)|socket closed|coordination service|unhealthy|'
    r'heartbeat|barrier|preempted|deadline exceeded|UNAVAILABLE',
    re.IGNORECASE,
)


def peer_failure(e: BaseException) -> DistributedError | None:
    """A DistributedError naming the lost process(es) when `e` looks like a peer's death in a multi-process run
    (a collective or a barrier failed), else None."""
    if jax.process_count() == 1 or not _PEER_ERROR.search(str(e)):
        return None
    n, me = jax.process_count(), jax.process_index()
    live = live_processes()
    if live is None:
        lost = 'process 0 (the coordinator) is unreachable'
    else:
        dead = [i for i in range(n) if i not in live]
        lost = (
            f'lost peer process {", ".join(map(str, dead))} of {n}'
            if dead
            else f'a collective across the {n} processes failed with all of them alive (one fell far behind)'
        )
    return DistributedError(
        f'{lost}: process {me} stops ({" ".join(str(e).split())[:300]}). The last committed '
        f'snapshot stays loadable; restart every process with the same command to continue'
    )


def describe() -> str:
    """'process i of N (devices: local/global)' for the start-up line."""
    return (
        f'process {jax.process_index()} of {jax.process_count()}, {jax.local_device_count()} local / '
        f'{jax.device_count()} global {jax.devices()[0].platform} devices'
    )


def die(msg: str, code: int = 1):
    """Write one `error:` line and leave at once (no atexit handlers: JAX's shutdown barrier would wait for
    the dead peer)."""
    sys.stderr.write(f'error: {msg}\n')
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(code)
