"""Multi-host training on JAX's real multi-process runtime: N train.py processes on this machine, connected by
jax.distributed (gloo collectives on CPU, 2 fake devices per process), against single-process runs of the same
config. Tiny runs (32x32, 8 channels, batch 8, 2-3 steps: tests/fault_harness.py's model at 32x32).

Every test picks a free port and kills its processes' groups in a finally. The compile of the step dominates:
process 1 of a multi-process run never hits the persistent compilation cache (JAX keys CPU executables by
device assignment and only process 0 writes), so a 2-process run costs two compiles on this 2-core machine.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import fault_harness as H
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / 'tests' / 'multihost_worker.py'
BASE = ['--config', str(ROOT / 'tests' / 'fault_harness.py'), '--config.data.resolution=32']
STEP_IMG = H.BATCH  # images per step (the global batch)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Run:
    """`nproc` train.py processes x `ndev` devices on `workdir` (process i's output in <workdir>.p<i>.out/err);
    `stall_build='P:S'`: process P builds its models S seconds late (multihost_worker.py)."""

    def __init__(self, workdir, nproc, ndev, *overrides, batch_log=True, heartbeat=10, stall_build=None):
        self.workdir, self.nproc = Path(workdir), nproc
        port = free_port()
        env = dict(
            os.environ,
            XLA_FLAGS=f'--xla_force_host_platform_device_count={ndev}',
            JAX_PLATFORMS='cpu',
            PYTHONUNBUFFERED='1',
        )
        env.pop('ALIGNJAX_FAULT', None)
        self.procs, self.logs = [], []
        for i in range(nproc):
            mh = (
                [
                    f'--coordinator=127.0.0.1:{port}',
                    f'--num_processes={nproc}',
                    f'--process_id={i}',
                    f'--heartbeat_timeout={heartbeat}',
                ]
                if nproc > 1
                else []
            )
            log = ['--batch-log', str(self.workdir / 'batches')] if batch_log else []
            log += ['--stall-build', stall_build] if stall_build else []
            cmd = [sys.executable, str(WORKER), *log, *BASE, f'--workdir={self.workdir}', *overrides, *mh]
            out, err = (self.workdir.with_name(f'{self.workdir.name}.p{i}.{k}') for k in ('out', 'err'))
            self.logs.append((out, err))
            with open(out, 'w') as fo, open(err, 'w') as fe:
                self.procs.append(
                    subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fo, stderr=fe, start_new_session=True)
                )

    def out(self, i) -> str:
        return self.logs[i][0].read_text()

    def err(self, i) -> str:
        return self.logs[i][1].read_text()

    def wait(self, limit: float) -> list[int]:
        deadline = time.time() + limit
        rcs = []
        for i, p in enumerate(self.procs):
            try:
                rcs.append(p.wait(timeout=max(deadline - time.time(), 1)))
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(
                    f'{self.workdir.name}: process {i} of {self.nproc} did not finish within {limit:.0f} s '
                    f'(load {os.getloadavg()[0]:.1f})\n'
                    + '\n'.join(f'--- p{j}\n{self.out(j)[-1500:]}\n{self.err(j)[-1500:]}' for j in range(self.nproc))
                )
        return rcs

    def kill(self, i=None):
        for p in self.procs if i is None else [self.procs[i]]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def expect(self, limit: float, code=0):
        rcs = self.wait(limit)
        for i, rc in enumerate(rcs):
            ok = rc == code if code is not None else rc != 0
            assert ok, f'{self.workdir.name}: process {i} exited {rc}\n{self.out(i)[-2500:]}\n{self.err(i)[-2500:]}'
        return rcs


@contextlib.contextmanager
def runs(*specs):
    """Start every Run(*spec) at once (a spec may end with a dict of Run's keyword arguments); kill all their
    process groups on the way out."""
    started = []
    try:
        for spec in specs:
            kw = spec[-1] if isinstance(spec[-1], dict) else {}
            started.append(Run(*spec[: len(spec) - bool(kw)], **kw))
        yield started
    finally:
        for r in started:
            r.kill()


def batches(workdir) -> list[list[str]]:
    """The global batches a run read, in step order: the hosts' blocks concatenated (and checked disjoint)."""
    files = sorted((Path(workdir) / 'batches').glob('p*.jsonl'))
    per_host = [[json.loads(line) for line in f.read_text().splitlines()] for f in files]
    assert len({len(h) for h in per_host}) == 1, [len(h) for h in per_host]
    out = []
    for step_rows in zip(*per_host):
        blocks = sorted(step_rows, key=lambda b: b['block'])
        assert [b['block'] for b in blocks] == list(range(len(files)))
        rows = [r for b in blocks for r in b['rows']]
        assert len(set(rows)) == len(rows) == STEP_IMG  # disjoint shards covering the global batch
        out.append(rows)
    return out


def assert_close(a, b, *, exact=False):
    na, _ = H.final_nets(a)
    nb, _ = H.final_nets(b)
    assert set(na) == set(nb) == {'G', 'G_ema', 'D'}
    for net in ('G', 'G_ema', 'D'):
        for i, (x, y) in enumerate(zip(na[net], nb[net])):
            if exact:
                assert x.dtype == y.dtype and np.array_equal(x, y), f'{net} leaf {i}: {a} vs {b}'
            else:
                # As tests/test_train.py's 8-vs-1 devices: the all-reduce (here across processes too) sums in
                # another order, and Adam's first steps (b1 = 0: update ~ lr * g / |g|) amplify that rounding
                # where a gradient is ~0, so parameters agree to a small fraction of one step (lr = 2e-3).
                np.testing.assert_allclose(
                    np.asarray(x, np.float64),
                    np.asarray(y, np.float64),
                    rtol=1e-4,
                    atol=1e-4,
                    err_msg=f'{net} leaf {i}: {a} vs {b}',
                )


# ---------------------------------------------------------------------------------------------------------
# The loader's global-batch layout (no processes).


def test_global_batches_layout_and_state_at():
    from alignjax.data import make_dataset, make_loader
    from alignjax.data.loader import EpochShuffleSampler, state_at

    ds = make_dataset('proc:faces?n=12', 8)
    one = make_loader(ds, batch_size=4, seed=1, shard_index=0, shard_count=1, global_batches=True)
    two = [make_loader(ds, batch_size=2, seed=1, shard_index=s, shard_count=2, global_batches=True) for s in (0, 1)]
    for _ in range(5):  # crosses epochs (12 images, 4 per global batch)
        whole = next(one)['image']
        np.testing.assert_array_equal(np.concatenate([next(t)['image'] for t in two]), whole)
    # grain's worker layout (host s, worker w, worker-local record i -> index (i*W + w)*S + s): positions form
    # whole global batches, host s's block of each, whatever W
    for hosts, workers, b in ((1, 3, 4), (2, 2, 3), (3, 1, 2)):
        smp = EpochShuffleSampler(10, seed=0, shard_count=hosts, global_batches=(b, workers))
        for s in range(hosts):
            for w in range(workers):
                for i in range(3 * b):
                    k = (i // b) * workers + w
                    assert smp.position((i * workers + w) * hosts + s) == (k * hosts + s) * b + i % b
    # state_at: grain's own state after k batches, and a loader set to it serves batch k next
    for k in (0, 1, 3):
        it = make_loader(ds, batch_size=2, seed=1, shard_index=1, shard_count=2, global_batches=True)
        for _ in range(k):
            next(it)
        assert json.loads(state_at(it, k)) == json.loads(it.get_state())
        fresh = make_loader(ds, batch_size=2, seed=1, shard_index=1, shard_count=2, global_batches=True)
        fresh.set_state(state_at(fresh, k))
        np.testing.assert_array_equal(next(fresh)['image'], next(it)['image'])
    # the same state arithmetic for worker layouts, from grain's get_state formula
    it = make_loader(ds, batch_size=2, seed=1, shard_index=1, shard_count=2, worker_count=2, global_batches=True)
    st = json.loads(state_at(it, 3))
    total = 2 * 2  # workers x hosts; worker 0 served batches 0 and 2, worker 1 batch 1
    assert st['last_seen_indices'] == {'0': 2 * 2 * total + 0 * 2 + 1 - total, '1': 1 * 2 * total + 1 * 2 + 1 - total}
    assert st['last_worker_index'] == 0


# ---------------------------------------------------------------------------------------------------------
# Real processes.


def test_two_processes_match_one_and_four_devices(tmp_path):
    """2 processes x 2 devices, 1 x 4 and 1 x 1 (started together): 2 steps give the same G, G_ema and D; each
    host read its own block of every global batch and the blocks form the single-process batches; process 0
    alone wrote the logs and metrics. Process 1 of the 2 builds its models 35 s after process 0 (as when it
    compiles them while process 0 finds them in the persistent cache, under load): the two must still meet at
    the first collective, which gloo gives up on after 30 s."""
    # 2 steps of 8; without R1 (one program less to compile: the slow tests below run R1 at step 0)
    steps = ['--config.train.kimg=0.016', '--config.train.r1_gamma=0']
    with runs(
        (tmp_path / 'p2', 2, 2, *steps, dict(stall_build='1:35')),
        (tmp_path / 'p1d4', 1, 4, *steps),
        (tmp_path / 'p1d1', 1, 1, *steps),
    ) as (r22, r14, r11):
        limit = H.timeout_s(600)
        for r in (r22, r14, r11):
            r.expect(limit)
    assert 'multi-host: 2 processes, 4 cpu devices (2 per process)' in r22.out(0)
    assert 'done:' in r22.out(0) and 'done:' not in r22.out(1)  # log lines: process 0
    rows = [json.loads(s) for s in (tmp_path / 'p2' / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows] == [1, 2]  # written once per tick
    assert sorted(p.name for p in (tmp_path / 'p2' / 'samples').iterdir()) == sorted(
        p.name for p in (tmp_path / 'p1d1' / 'samples').iterdir()
    )
    b22, b14, b11 = batches(tmp_path / 'p2'), batches(tmp_path / 'p1d4'), batches(tmp_path / 'p1d1')
    assert len(b11) == 2 and b22 == b14 == b11
    assert_close(tmp_path / 'p2', tmp_path / 'p1d1')
    assert_close(tmp_path / 'p1d4', tmp_path / 'p1d1')
    assert_close(tmp_path / 'p2', tmp_path / 'p1d4')


@pytest.fixture(scope='module')
def killed_and_reference(tmp_path_factory):
    """An uninterrupted 2-process run of 3 steps, and a 2-process run SIGKILLed (both processes, each right
    after the snapshot of step 2 is committed, as tests/test_train.py's kill test), its workdir copied before
    any resume."""
    d = tmp_path_factory.mktemp('multihost')
    steps = ['--config.train.kimg=0.024']  # 3 steps; snapshots at 2 and 3
    with runs((d / 'ref', 2, 2, *steps)) as (ref,):
        ref.expect(H.timeout_s(600))
    with runs((d / 'killed', 2, 2, *steps, '--config.debug.kill_at_step=2')) as (k,):
        rcs = k.wait(H.timeout_s(600))
    assert all(rc != 0 for rc in rcs), rcs
    assert -signal.SIGKILL in rcs, rcs
    assert H.committed(d / 'killed') == [2] and not (d / 'killed' / 'final').exists()
    shutil.copytree(d / 'killed', d / 'snapshot2')
    shutil.rmtree(d / 'snapshot2' / 'batches')
    return d


@pytest.mark.slow
def test_sigkill_both_processes_then_restart_is_bit_exact(killed_and_reference):
    """Slow (measured 83 s for the shared fixture + 46 s with a warm compilation cache; three 2-process runs).
    Both processes SIGKILLed after the snapshot of step 2; the
    same two commands again continue from it, each host from its own saved iterator state: the final G, G_ema and
    D equal the uninterrupted 2-process run's bit for bit, and so do the batches read."""
    d = killed_and_reference
    with runs((d / 'killed', 2, 2, '--config.train.kimg=0.024')) as (r,):
        r.expect(H.timeout_s(600))
    assert 'resumed from' in r.out(0) and '/checkpoints/2 ' in r.out(0)
    assert 'note: data:' not in r.out(0)  # same topology: the saved iterator states, no note
    assert_close(d / 'ref', d / 'killed', exact=True)
    assert batches(d / 'killed') == batches(d / 'ref')  # steps 1-2 before the kill, 3 after the restart
    rows = [json.loads(s)['step'] for s in (d / 'killed' / 'metrics.jsonl').read_text().splitlines()]
    assert rows == [1, 2, 3]


@pytest.mark.slow
def test_two_process_snapshot_resumes_on_one_process(killed_and_reference, tmp_path):
    """Slow (measured 12 s with a warm cache, plus the shared fixture's 83 s). The step-2 snapshot of 2
    processes x 2 devices resumes on
    1 process x 4 devices and on 1 x 1: params restored and resharded, and the data continues at global image 16
    (global batch 2, the same images in the same order), so the final model matches the uninterrupted 2-process
    run to float rounding (another device count sums in another order)."""
    d = killed_and_reference
    for name in ('on1x4', 'on1x1'):
        shutil.copytree(d / 'snapshot2', tmp_path / name)
    with runs(
        (tmp_path / 'on1x4', 1, 4, '--config.train.kimg=0.024'), (tmp_path / 'on1x1', 1, 1, '--config.train.kimg=0.024')
    ) as rs:
        for r in rs:
            r.expect(H.timeout_s(600))
    ref_batches = batches(d / 'ref')
    for r in rs:
        out = r.out(0)
        assert 'resumed from' in out and '/checkpoints/2 ' in out
        assert re.search(
            r'note: data: snapshot 2 was written by 2 process\(es\) x 4 images, 0 loader workers; now '
            r'1 process\(es\) x 8 images, 0 workers: the global stream continues at image 16',
            out,
        ), out
        assert batches(r.workdir) == ref_batches[2:]  # step 3's global batch, as the 2-process run read it
        assert_close(d / 'ref', r.workdir)


@pytest.mark.slow
def test_dead_peer_stops_the_survivor(tmp_path):
    """Slow (measured 54 s with a warm cache: one 2-process run's start-up and compile). Process 1 is SIGKILLed
    mid-run (after
    the snapshot of step 2): process 0 exits non-zero within 60 s (heartbeat timeout 10 s), naming the lost
    process, and the last committed snapshot loads."""
    import alignjax as aj

    wd = tmp_path / 'run'
    with runs((wd, 2, 2, '--config.train.kimg=8', '--config.log.tick_kimg=1000', '--config.log.keep=2')) as (r,):
        deadline = time.time() + H.timeout_s(600)
        while not H.committed(wd) and time.time() < deadline:
            assert r.procs[0].poll() is None and r.procs[1].poll() is None, r.err(0)[-2000:] + r.err(1)[-2000:]
            time.sleep(0.5)
        assert H.committed(wd), 'no snapshot was committed in time'
        time.sleep(1.0)  # mid-run: past the snapshot
        r.kill(1)
        t0 = time.time()
        try:
            rc = r.procs[0].wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f'process 0 still running 60 s after process 1 was killed\n{r.err(0)[-2000:]}')
        elapsed = time.time() - t0
    err = r.err(0)
    assert rc != 0 and elapsed <= 60, (rc, elapsed)
    # our message when a collective fails first; JAX's coordination service's when the heartbeat check does
    assert re.search(r'error: lost peer process 1 of 2', err) or re.search(
        r'tasks are unhealthy \(stopped sending heartbeats\):\s*1\b', err
    ), err[-3000:]
    last = max(H.committed(wd))
    ck = aj.load_checkpoint(wd / 'checkpoints' / str(last))
    assert set(ck.nets) == {'G', 'G_ema', 'D'} and ck.extra['step'] == last
    print(f'survivor exited {rc} {elapsed:.1f} s after its peer was killed (snapshot {last} loads)')


@pytest.mark.slow
def test_sigterm_on_one_process_stops_every_process(tmp_path):
    """Slow (measured 32 s with a warm cache). SIGTERM to process 1 only: the processes agree on it at the next
    tick, both write the same snapshot and stop with exit 143, and process 0 says where the snapshot is."""
    wd = tmp_path / 'run'
    with runs((wd, 2, 2, '--config.train.kimg=8', '--config.log.keep=2')) as (r,):
        deadline = time.time() + H.timeout_s(600)
        while not H.committed(wd) and time.time() < deadline:
            assert r.procs[0].poll() is None and r.procs[1].poll() is None, r.err(0)[-2000:] + r.err(1)[-2000:]
            time.sleep(0.5)
        assert H.committed(wd), 'no snapshot was committed in time'
        os.kill(r.procs[1].pid, signal.SIGTERM)
        assert r.wait(120) == [143, 143]
    m = re.search(r'stopped by SIGTERM at kimg [0-9.]+ \(step (\d+)\); snapshot \S+/checkpoints/(\d+)', r.out(0))
    assert m and m.group(1) == m.group(2) and int(m.group(1)) in H.committed(wd), r.out(0)[-2000:]
    assert 'stopped by' not in r.out(1)  # log lines: process 0
