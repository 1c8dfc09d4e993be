"""Train a StyleGAN2 from scratch, or fine-tune a child from any checkpoint alignjax reads.

    python train.py --config configs/paper256.py --config.data.spec=zip:/data/ffhq256.zip --workdir runs/ffhq
    python train.py --config configs/auto.py --config.data.spec=folder:/data/toons \\
        --config.finetune.init_from=runs/ffhq/final --config.train.augment=ada --workdir runs/toons
    python train.py --config configs/demo.py --workdir runs/demo          # the demo: parent, then child

Every config key can be set with --config.<key>=<value> (the keys and their defaults are listed below).
--config defaults to configs/demo.py next to this file (from any directory); --workdir defaults to
runs/<config name> under the current directory, and the run says which workdir it uses.

Restarting with the same command continues the run from its newest readable snapshot (bit-exactly); a workdir
holding a run with another config is refused with the keys that differ. --config.resume=False starts afresh
instead (the old run is moved to <workdir>/replaced-<time>/, nothing is deleted).
Ctrl-C or SIGTERM: the current step finishes, a snapshot is written, exit 130 / 143 (a second Ctrl-C aborts at once).
Errors print one `error:` line; --debug (or ALIGNJAX_DEBUG=1) shows the traceback instead.
Multi-host: pass --multihost (calls jax.distributed.initialize(); the global batch is split over hosts).
"""
import difflib
import os
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / 'configs' / 'demo.py'



def _debug() -> bool:
    return os.environ.get('ALIGNJAX_DEBUG', '') not in ('', '0') or '--debug' in sys.argv


def _config_keys_help() -> str:
    """The config keys with their defaults (base_config: every preset has these keys)."""
    from alignjax.train.config import base_config, flatten
    rows = [f'  --config.{k}={v!r}' for k, v in flatten(base_config(), lists=False).items()]
    return '\nconfig keys (defaults of alignjax/train/config.py; presets change some):\n' + '\n'.join(rows) + '\n'


if any(a in ('-h', '--help', '--helpshort', '--helpfull', '-?') for a in sys.argv[1:]):
    __doc__ += _config_keys_help()


def _config_path(argv) -> str:
    for i, a in enumerate(argv):
        if a == '--config' and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith('--config='):
            return a.split('=', 1)[1]
    return str(DEFAULT_CONFIG)


def _explain_flag_error(argv, e: BaseException) -> str:
    """One line for a failed flag parse: an unknown config key (with close matches), a missing config file,
    or the parser's own message."""
    path = _config_path(argv).split(':', 1)[0]
    if not Path(path).is_file():
        return f'--config {path}: no such config file'
    try:
        import importlib.util
        from alignjax.train.config import flatten
        spec = importlib.util.spec_from_file_location('_train_config', path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        keys = list(flatten(mod.get_config()))
    except Exception:  # the config file itself is broken: report the parser's message
        keys = []
    for a in argv:
        if a.startswith('--config.'):
            key = a[len('--config.'):].split('=', 1)[0]
            if keys and key not in keys and not any(k.startswith(key + '.') for k in keys):
                close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
                hint = f' (did you mean {", ".join("--config." + c for c in close)}?)' if close else \
                    ' (train.py --help lists the keys)'
                return f'--config.{key}: no such config key{hint}'
    msg = ' '.join(str(e).replace('\\n', ' ').split())
    if len(msg) > 1 and msg[0] == msg[-1] and msg[0] in '\'"':
        msg = msg[1:-1]
    return msg or type(e).__name__


def parse_flags(argv):
    try:
        rest = FLAGS(argv)
        FLAGS.config.get('name')    # config_flags defers a config file's load error to the first access
        return rest
    except SystemExit:
        raise
    except Exception as e:
        _flag_error(argv[1:], e)


def _flag_error(argv, e):
    if _debug():
        raise e
    sys.stderr.write(f'error: {_explain_flag_error(argv, e)}\n')
    sys.exit(2)


try:   # with a default file, config_flags loads it and applies --config.* overrides right here
    config_flags.DEFINE_config_file('config', str(DEFAULT_CONFIG), 'ml_collections config file (default: the demo)',
                                    lock_config=False)
except Exception as e:  # noqa: BLE001 (an unknown key, a bad value, a broken config file)
    _flag_error(sys.argv[1:], e)
flags.DEFINE_string('workdir', None, 'output directory (checkpoints, samples, metrics, final model); '
                    'default runs/<config name>')
flags.DEFINE_bool('multihost', False, 'initialise jax.distributed (TPU pods, multi-node GPU)')
flags.DEFINE_bool('debug', False, 'show tracebacks instead of one-line errors (also ALIGNJAX_DEBUG=1)')
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)   # orbax logs every save at INFO
    debug = FLAGS.debug or _debug()
    workdir = FLAGS.workdir
    if workdir is None:
        workdir = f'runs/{FLAGS["config"].value.get("name", "run")}'
        print(f'workdir: {Path(workdir).absolute()} (no --workdir given: runs/<config name>; a run already there '
              f'is continued)', flush=True)
    from alignjax.data import BadImageError, EmptyDatasetError
    from alignjax.errors import AlignjaxError
    from alignjax.io.safe_pickle import CheckpointError
    ours = (AlignjaxError, CheckpointError, BadImageError, EmptyDatasetError, FileNotFoundError, NotADirectoryError)
    try:
        from alignjax.train.config import validate_config
        from alignjax.train.loop import check_workdir, run
        validate_config(FLAGS.config)          # before jax starts or any data is read
        check_workdir(workdir)
        import jax
        if FLAGS.multihost:
            jax.distributed.initialize()
        results = run(FLAGS.config, workdir)
    except KeyboardInterrupt:   # Ctrl-C before training started (during it, the loop handles SIGINT itself)
        if debug:
            raise
        sys.stderr.write('error: interrupted before training started; nothing was saved\n')
        sys.exit(130)
    except ours as e:
        if debug:
            raise
        msg = ' '.join(str(e).split('\n'))
        sys.stderr.write(f'error: {msg}\n')
        sys.exit(1)
    stopped = results.get('stopped') or (results.get('main') or {}).get('stopped')
    if stopped:
        sig = stopped['signal'] if isinstance(stopped, dict) else stopped
        sys.exit(130 if sig == 'SIGINT' else 143)


if __name__ == '__main__':
    app.run(main, flags_parser=parse_flags)
