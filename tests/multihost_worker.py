"""One process of a multi-host test run (tests/test_multihost.py): the training CLI (`alignjax.cli.train.main`),
optionally logging what this process's loader served.

    python tests/multihost_worker.py [--batch-log DIR] [--stall-build P:SECONDS] <alignjax-train arguments>

--batch-log DIR writes DIR/p<process index>.jsonl: one line per batch this process read, with the sha1 of
every image row, so a test can check that the hosts' shards are disjoint and together form the global batch of
a single-process run, in order. --stall-build P:SECONDS makes process P take SECONDS longer to build its
models (as a process that compiles them without the persistent cache does under load).
"""

import hashlib
import json
import sys
import time
from pathlib import Path


class _LoggingLoader:
    def __init__(self, it, path: Path):
        self._it, self._path = it, path

    def __iter__(self):
        return self

    def __next__(self):
        b = next(self._it)
        rows = [hashlib.sha1(r.tobytes()).hexdigest()[:16] for r in b['image']]
        with open(self._path, 'a') as f:
            f.write(json.dumps({'block': self._it.layout['shard_index'], 'rows': rows}) + '\n')
        return b

    def __getattr__(self, name):
        return getattr(self._it, name)


def main(argv):
    import jax

    from alignjax.train import loop

    if argv[:1] == ['--batch-log']:
        log_dir, argv = Path(argv[1]), argv[2:]
        log_dir.mkdir(parents=True, exist_ok=True)
        real_loader = loop.make_loader

        def make_loader(*a, **kw):
            return _LoggingLoader(real_loader(*a, **kw), log_dir / f'p{jax.process_index()}.jsonl')

        loop.make_loader = make_loader
    if argv[:1] == ['--stall-build']:
        who, seconds = (float(v) for v in argv[1].split(':'))
        argv = argv[2:]
        real_build = loop.build_models

        def build_models(*a, **kw):
            if jax.process_index() == int(who):
                time.sleep(seconds)
            return real_build(*a, **kw)

        loop.build_models = build_models
    from alignjax.cli.train import main as train_main

    train_main(argv)


if __name__ == '__main__':
    main(sys.argv[1:])
