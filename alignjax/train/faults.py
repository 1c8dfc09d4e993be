"""Fault injection for the crash-recovery tests (tests/test_faults.py): kill the training process with SIGKILL at
a named point, as a power cut or the OOM killer would.

    ALIGNJAX_FAULT=step@5          after step 5 is dispatched (before its metrics, grid or snapshot)
    ALIGNJAX_FAULT=snapshot@6:3    inside the snapshot of step 6, once its temporary directory holds 3 files
                                   (right after the snapshot is committed if it never gets that many)
    ALIGNJAX_FAULT=export:4        inside the final export, once its temporary directory holds 4 files
    ALIGNJAX_FAULT=loader@20       when the data loader (its prefetch threads) reads its 20th record

The variable is read once per run; when it is unset every hook is a no-op (nothing is added to the step loop
but one comparison per step). Each kill first writes one `fault: ...` line to stderr.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from pathlib import Path

ENV = 'ALIGNJAX_FAULT'
_SPEC = re.compile(r'^(step|snapshot|export|loader)(?:@(\d+))?(?::(\d+))?$')


def kill(why: str):
    os.write(2, f'\nfault: SIGKILL {why}\n'.encode())
    os.kill(os.getpid(), signal.SIGKILL)


class Faults:
    """The fault named by $ALIGNJAX_FAULT (or `spec`); `Faults('')` injects nothing."""

    def __init__(self, spec: str | None = None):
        spec = os.environ.get(ENV, '') if spec is None else spec
        self.kind, self.at, self.files = None, None, 1
        if spec:
            m = _SPEC.match(spec.strip())
            if not m:
                raise ValueError(f'{ENV}={spec!r}: expected step@N, snapshot@N[:files], export[:files] or loader@N')
            self.kind = m.group(1)
            self.at = int(m.group(2)) if m.group(2) else None
            self.files = int(m.group(3)) if m.group(3) else 1
            if self.kind in ('step', 'snapshot', 'loader') and self.at is None:
                raise ValueError(f'{ENV}={spec!r}: {self.kind} needs @N')

    def after_step(self, step: int):
        if self.kind == 'step' and step == self.at:
            kill(f'between steps, after step {step}')

    def wrap_source(self, source):
        return _KillingSource(source, self.at) if self.kind == 'loader' else source

    @contextlib.contextmanager
    def snapshot(self, step: int, ckpt_dir: Path):
        if self.kind != 'snapshot' or step != self.at:
            yield
            return
        with _watch(Path(ckpt_dir), '*.orbax-checkpoint-tmp*', self.files, f'inside the snapshot of step {step}'):
            yield
        kill(f'right after the snapshot of step {step} was committed')

    @contextlib.contextmanager
    def export(self, workdir: Path):
        if self.kind != 'export':
            yield
            return
        with _watch(Path(workdir), '.final.tmp-*', self.files, 'inside the final export'):
            yield
        kill('right after the final export')


@contextlib.contextmanager
def _watch(parent: Path, pattern: str, files: int, where: str):
    """SIGKILL this process as soon as a directory matching `pattern` under `parent` holds `files` files."""
    done = threading.Event()

    def poll():
        while not done.is_set():
            for tmp in parent.glob(pattern):
                n = sum(len(fs) for _, _, fs in os.walk(tmp))
                if n >= files:
                    kill(f'{where} ({n} files written to {tmp.name})')
            time.sleep(0.0005)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


class _KillingSource:
    """A data source that SIGKILLs the process on its `at`-th read (reads happen in the loader's threads)."""

    def __init__(self, source, at: int):
        self._source, self._at, self._n = source, at, 0
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._source)

    def __getitem__(self, i):
        with self._lock:
            self._n += 1
            n = self._n
        if n == self._at:
            kill(f'inside the data loader (record read {n}, in thread {threading.current_thread().name})')
        return self._source[i]

    def __getattr__(self, name):
        return getattr(self._source, name)

    def __repr__(self):
        return repr(self._source)
