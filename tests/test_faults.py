"""Training survives the faults a real run meets (issue 15): SIGKILL at pseudo-random points (between steps, inside
snapshot writes, inside the final export, inside the data loader's prefetch) continues bit-exactly and never
loses a committed snapshot; corrupt snapshots, Ctrl-C/SIGTERM, a full disk, a changed config, nonsense inputs.

The harness and its tiny config are tests/fault_harness.py. Subprocess runs use one CPU device; in-process runs
(conftest: 8 devices) share the jitted step programs between tests."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import fault_harness as H
import pytest

pytestmark = pytest.mark.filterwarnings('ignore')
ONE_DEVICE = '--xla_force_host_platform_device_count=1'


@pytest.fixture(autouse=True)
def _one_device_subprocesses(monkeypatch):
    monkeypatch.setenv('XLA_FLAGS', ONE_DEVICE)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """One uninterrupted run of the harness config (a subprocess, like every faulted run)."""
    wd = tmp_path_factory.mktemp('faults') / 'reference'
    env_flags = os.environ.get('XLA_FLAGS')
    os.environ['XLA_FLAGS'] = ONE_DEVICE
    try:
        p = H.run_train(wd, expect=0, what='the uninterrupted reference run')
    finally:
        if env_flags is None:
            os.environ.pop('XLA_FLAGS')
        else:
            os.environ['XLA_FLAGS'] = env_flags
    assert 'done:' in p.stdout and H.committed(wd)[-1] == H.STEPS
    return wd


def resumed_from(stdout: str):
    m = re.search(r'resumed from \S+/checkpoints/(\d+) ', stdout)
    return int(m.group(1)) if m else None


def run_fault_chain(reference, workdir, faults):
    """Run the harness once per fault (each must SIGKILL the run), then once more to finish. After every kill
    the restart must resume from the newest snapshot committed before it (none is ever lost or corrupted);
    the finished run's G/G_ema/D must equal the uninterrupted reference bit for bit. Returns a report."""
    report = []
    newest = 0
    for fault in [*faults, None]:
        before = H.committed(workdir)
        p = H.run_train(workdir, fault=fault, expect=None if fault else 0, what=f'fault run {fault}')
        killed = re.search(r'fault: SIGKILL ([^\n]*)', p.stderr)
        if fault:
            assert p.returncode == -signal.SIGKILL and killed, (
                f'{fault} did not kill the run (exit {p.returncode})\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}'
            )
        assert 'Traceback' not in p.stderr, p.stderr[-3000:]
        assert 'unreadable' not in p.stdout, p.stdout  # a kill never corrupts a committed snapshot
        start = resumed_from(p.stdout)
        if before:
            assert start == before[-1], f'{fault}: resumed from {start}, newest committed was {before[-1]}'
        else:
            assert start is None
        after = H.committed(workdir)
        assert (after[-1] if after else 0) >= newest, f'{fault}: snapshot {newest} lost (now {after})'
        newest = after[-1] if after else 0
        assert not list((Path(workdir) / 'checkpoints').glob('*.corrupt-*'))
        report.append(
            dict(
                fault=fault or '(none: finish)',
                resumed_from=start,
                killed=killed and killed.group(1),
                committed_after=after,
                exit=p.returncode,
            )
        )
    H.assert_same_final(reference, workdir)
    rows = [json.loads(s) for s in (Path(workdir) / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows] == list(range(1, H.STEPS + 1))  # no row repeated after any resume
    print('\n'.join(json.dumps(r) for r in report))
    return report


def test_sigkill_inside_snapshot_and_export_resumes_bit_exactly(reference, tmp_path):
    report = run_fault_chain(reference, tmp_path / 'run', ['snapshot@6:3', 'export:4'])
    assert report[1]['resumed_from'] == 4 and report[2]['resumed_from'] == H.STEPS


def plan_faults(seed: int, n: int = 10):
    """n pseudo-random kill points: between steps, inside snapshot writes and inside the loader's prefetch, in
    an order each can fire in (the step/snapshot points lie ahead of where the previous kill left the run),
    and the final export last."""
    rng = random.Random(seed)
    kinds = ['step', 'snapshot', 'loader'] * ((n - 1 + 2) // 3)
    rng.shuffle(kinds)
    out, step = [], 0
    for kind in kinds[: n - 1]:
        if kind == 'step':
            step = min(step + rng.randint(1, 2), H.STEPS - 1)
            out.append(f'step@{step}')
        elif kind == 'snapshot':
            s = min((step // H.SNAP_EVERY + 1) * H.SNAP_EVERY, H.STEPS - H.SNAP_EVERY)
            step = s
            out.append(f'snapshot@{s}:{rng.randint(1, 30)}')
        else:
            out.append(f'loader@{rng.randint(1, 40)}')
    out.append(f'export:{rng.randint(1, 8)}')
    return out


@pytest.mark.slow
def test_sigkill_at_ten_pseudo_random_points(reference, tmp_path):
    faults = plan_faults(15)
    assert {f.split('@')[0].split(':')[0] for f in faults} == {'step', 'snapshot', 'loader', 'export'}
    run_fault_chain(reference, tmp_path / 'run', faults)


# ---------------------------------------------------------------------------------------------------------
# The four cases, in process (shared compiles): corrupt snapshots, signals, disk full, a changed config.


def cfg(**kw):
    c = H.get_config()
    for k, v in kw.items():
        node = c
        *parents, last = k.split('__')
        for p in parents:
            node = node[p]
        node[last] = v
    return c


def steps_kimg(n):
    return n * H.BATCH / 1000


def train(config, workdir, **kw):
    from alignjax.train import loop

    return loop.train(config, workdir, **kw)


def test_corrupt_snapshots_are_moved_aside_and_the_newest_good_one_used(tmp_path, capsys):
    from alignjax.train import loop

    wd = tmp_path / 'run'
    train(cfg(train__kimg=steps_kimg(6), log__grid_kimg=steps_kimg(2)), wd)
    assert H.committed(wd) == [2, 4, 6]
    # grids at intervals under 1 kimg: one file per interval, named by image count
    assert sorted(p.name for p in (wd / 'samples').glob('grid_0*.png')) == [
        f'grid_{n * H.BATCH:09d}.png' for n in (2, 4, 6)
    ]
    (wd / 'checkpoints' / '6' / 'meta' / 'metadata').write_text('')  # truncated JSON
    (wd / 'checkpoints' / '4' / 'state' / 'manifest.ocdbt').unlink()  # a lost array store file
    capsys.readouterr()
    train(cfg(train__kimg=steps_kimg(8)), wd)
    out = capsys.readouterr().out
    assert re.search(r'snapshot \S+/checkpoints/6 is unreadable \(Expecting value.*moved it to \S+/6\.corrupt-', out)
    assert re.search(r'snapshot \S+/checkpoints/4 is unreadable \(.*moved it to \S+/4\.corrupt-', out)
    assert resumed_from(out) == 2
    assert 'dropped 4 row(s) written after step 2' in out
    assert len(list((wd / 'checkpoints').glob('6.corrupt-*'))) == 1
    assert H.committed(wd) == [4, 6, 8]
    rows = [json.loads(s) for s in (wd / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows] == list(range(1, 9))
    # every snapshot unreadable: stop, naming them all
    for s in (4, 6, 8):
        (wd / 'checkpoints' / str(s) / 'meta' / 'metadata').write_text('{')
    with pytest.raises(loop.ResumeError, match=r'no readable snapshot in .*: 8 \(.*\); 6 \(.*\); 4 \(') as e:
        train(cfg(train__kimg=steps_kimg(10)), wd)
    assert 'resume=False' in str(e.value)


def _signal_at(monkeypatch, sig, at_step):
    """Deliver `sig` to this process while step `at_step` runs (as a user's Ctrl-C or a scheduler would)."""
    from alignjax.train import step as S

    real = S.StepFns.step

    def step(self, state, x, c, step_index=None):
        if step_index + 1 == at_step:
            os.kill(os.getpid(), sig)
        return real(self, state, x, c, step_index)

    monkeypatch.setattr(S.StepFns, 'step', step)


@pytest.fixture
def main_thread():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip('signal handlers need the main thread')


needs_main_thread = pytest.mark.usefixtures('main_thread')


@needs_main_thread
@pytest.mark.parametrize('sig,at', [(signal.SIGTERM, 4), (signal.SIGINT, 3)])
def test_signal_finishes_the_step_snapshots_and_stops(tmp_path, monkeypatch, capsys, sig, at):
    """SIGTERM during a snapshot step (4) must not re-save it ('Checkpoint for step 4 already exists');
    SIGINT (3, between snapshots) writes a snapshot of that step. Both say where, and a rerun continues."""
    wd = tmp_path / 'run'
    _signal_at(monkeypatch, sig, at)
    summary = train(cfg(train__kimg=steps_kimg(8)), wd)
    out = capsys.readouterr().out
    name = signal.Signals(sig).name
    assert summary['stopped'] == name and summary['step'] == at
    assert f'stopped by {name} at kimg {at * H.BATCH / 1000:.3f} (step {at}); snapshot {wd}/checkpoints/{at}' in out
    assert H.committed(wd)[-1] == at
    monkeypatch.undo()
    monkeypatch.setenv('XLA_FLAGS', ONE_DEVICE)
    summary = train(cfg(train__kimg=steps_kimg(8)), wd)
    assert not summary['stopped'] and summary['step'] == 8
    assert resumed_from(capsys.readouterr().out) == at


@needs_main_thread
def test_stop_in_a_stage_stops_the_whole_run_and_resume_continues_that_stage(tmp_path, monkeypatch, capsys):
    from alignjax.train import loop

    c = cfg(train__kimg=steps_kimg(4))
    with c.unlocked():
        c.from_scratch = True
        c.stages = (
            dict(name='parent', pretrained=str(tmp_path / 'absent'), overrides={}),
            dict(
                name='child',
                overrides={
                    'data.spec': 'proc:toons?n=32',
                    'finetune.init_from': '{parent}',
                    'train.kimg': steps_kimg(2),
                },
            ),
        )
    _signal_at(monkeypatch, signal.SIGTERM, 3)
    res = loop.run(c, tmp_path / 'demo')
    out = capsys.readouterr().out
    assert res['stopped'] == {'stage': 'parent', 'signal': 'SIGTERM'}
    assert 'stage parent is unfinished, so it was not exported and child not started' in out
    assert not (tmp_path / 'demo' / 'parent' / 'final').exists()  # never promoted
    assert not (tmp_path / 'demo' / 'child').exists() and not (tmp_path / 'demo' / 'compare.png').exists()
    monkeypatch.undo()
    monkeypatch.setenv('XLA_FLAGS', ONE_DEVICE)
    res = loop.run(c, tmp_path / 'demo')
    out = capsys.readouterr().out
    assert 'stopped' not in res and resumed_from(out) == 3
    assert res['parent']['step'] == 4 and res['child']['step'] == 2
    assert (tmp_path / 'demo' / 'compare.png').exists()


def test_changed_config_is_named_and_resume_false_starts_afresh(tmp_path, capsys):
    from alignjax.train import loop

    wd = tmp_path / 'run'
    train(cfg(train__kimg=steps_kimg(2)), wd)
    with pytest.raises(loop.ResumeError) as e:
        train(cfg(train__kimg=steps_kimg(4), model__w_dim=32), wd)
    msg = str(e.value)
    assert 'model.w_dim: 16 in the workdir, 32 now' in msg and 'new --workdir' in msg and 'resume=False' in msg
    with pytest.raises(loop.ResumeError, match=r'seed: 0 in the workdir, 1 now'):
        train(cfg(train__kimg=steps_kimg(4), seed=1), wd)
    train(cfg(train__kimg=steps_kimg(4)), wd)  # kimg and log.* may change: resumes
    assert resumed_from(capsys.readouterr().out) == 2
    summary = train(cfg(train__kimg=steps_kimg(2), seed=1, resume=False), wd)
    out = capsys.readouterr().out
    assert 'starting afresh' in out and resumed_from(out) is None and summary['step'] == 2
    old = list(wd.glob('replaced-*'))
    assert len(old) == 1 and H.committed(old[0]) == [2, 4] and H.committed(wd) == [2]
    assert summary['kimg'] == steps_kimg(2)


def _mount_tmpfs(path: Path, opts: str):
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', opts, 'tmpfs', str(path)], capture_output=True, text=True, timeout=30
    )
    if p.returncode:
        pytest.skip(f'cannot mount a tmpfs here ({p.stderr.strip() or p.returncode})')


def _umount(path: Path):
    if subprocess.run(['umount', str(path)], capture_output=True, timeout=30).returncode:
        subprocess.run(['umount', '-l', str(path)], capture_output=True, timeout=30)


def test_disk_full_during_a_snapshot(tmp_path, capsys):
    from alignjax.train import loop

    mnt = tmp_path / 'small'
    _mount_tmpfs(mnt, 'size=8m')  # room for two snapshots + final/ once the filler is gone
    try:
        wd = mnt / 'run'
        train(cfg(train__kimg=steps_kimg(2)), wd)
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        (mnt / 'filler').write_bytes(b'\0' * (free - 96 * 1024))  # ~96 KiB left: less than a snapshot
        with pytest.raises(loop.DiskFull) as e:
            train(cfg(train__kimg=steps_kimg(4)), wd)
        msg = str(e.value)
        assert '\n' not in msg
        assert re.search(
            rf'disk full on {mnt} \(\d+ KiB free\) writing {wd}/checkpoints/4\.orbax-checkpoint-tmp', msg
        ), msg
        assert 'the snapshot of step 4 (kimg 0.032) was not written' in msg
        assert f'the last good snapshot, {wd}/checkpoints/2 (kimg 0.016), is kept' in msg
        assert not list((wd / 'checkpoints').glob('*tmp*')) and H.committed(wd) == [2]
        (mnt / 'filler').unlink()
        capsys.readouterr()
        summary = train(cfg(train__kimg=steps_kimg(4)), wd)
        assert resumed_from(capsys.readouterr().out) == 2 and summary['step'] == 4 and H.committed(wd) == [2, 4]
    finally:
        _umount(mnt)


def test_nonsense_kimg_rejected():
    from alignjax.train.config import ConfigError, validate_config

    for bad in (-1.0, 0.0):
        with pytest.raises(ConfigError, match=rf'--config.train.kimg={bad}: must be positive'):
            validate_config(cfg(train__kimg=bad))
    validate_config(cfg())


# ---------------------------------------------------------------------------------------------------------
# train.py's own error paths: one `error:` line, checked before anything expensive (no jax work, no workdir).


def cli(*args, cwd=None, base_timeout=120):
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    env.pop('ALIGNJAX_DEBUG', None)
    cmd = [sys.executable, str(H.ROOT / 'train.py'), *args]
    try:
        return subprocess.run(
            cmd, cwd=cwd or H.ROOT, env=env, capture_output=True, text=True, timeout=H.timeout_s(base_timeout)
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f'train.py {" ".join(args)} did not answer within {e.timeout:.0f} s') from None


def one_error_line(p, rc):
    assert p.returncode == rc, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    lines = [s for s in p.stderr.splitlines() if s.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), p.stderr[-3000:]
    return lines[0]


def test_cli_errors_are_one_line(tmp_path):
    # a misspelled key, from another directory (the default --config is found next to train.py)
    line = one_error_line(cli('--config.train.kimgg=1', f'--workdir={tmp_path / "w"}', cwd=tmp_path), 2)
    assert line.startswith('error: --config.train.kimgg: no such config key (did you mean --config.train.kimg')
    line = one_error_line(
        cli(
            '--config',
            str(H.ROOT / 'tests' / 'fault_harness.py'),
            '--config.train.kimg=-1',
            f'--workdir={tmp_path / "w"}',
        ),
        1,
    )
    assert line == 'error: --config.train.kimg=-1.0: must be positive'
    assert not (tmp_path / 'w').exists()
    line = one_error_line(cli('--config', str(tmp_path / 'nope.py')), 2)
    assert line == f'error: --config {tmp_path / "nope.py"}: no such config file'


def test_cli_read_only_workdir(tmp_path):
    ro = tmp_path / 'ro'
    _mount_tmpfs(ro, 'ro,size=64k')
    try:
        t0 = time.time()
        line = one_error_line(cli('--config', str(H.ROOT / 'tests' / 'fault_harness.py'), f'--workdir={ro / "run"}'), 1)
        assert line.startswith(f'error: workdir {ro / "run"} is not writable (Read-only file system)'), line
        assert time.time() - t0 < H.timeout_s(60)
    finally:
        _umount(ro)


def test_cli_help_lists_config_keys(tmp_path):
    p = cli('--help', cwd=tmp_path)
    text = p.stdout + p.stderr
    for key in ('--config.train.kimg=', '--config.model.w_dim=', '--config.log.snapshot_kimg=', '--config.resume='):
        assert key in text, text[-3000:]


@needs_main_thread
def test_cli_ctrl_c_twice_aborts_at_once_without_traceback(tmp_path):
    """The second Ctrl-C (the first asks for a snapshot) ends the process at once: exit 130, no traceback,
    nothing saved."""
    wd = tmp_path / 'run'
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    cmd = H.train_cmd(wd)
    p = subprocess.Popen(
        cmd, cwd=H.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.time() + H.timeout_s(180)
        while not (wd / 'samples' / 'grid_init.png').exists():  # the loop (and its handler) has started
            assert p.poll() is None and time.time() < deadline, f'train.py never started training: {cmd}'
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGINT)
        time.sleep(0.2)
        os.kill(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=H.timeout_s(60))
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    assert p.returncode == 130, (p.returncode, out[-2000:], err[-2000:])
    assert 'Traceback' not in err and 'KeyboardInterrupt' not in err, err[-3000:]
    assert 'aborted by a second Ctrl-C' in err and 'SIGINT: stopping after this step' in out
